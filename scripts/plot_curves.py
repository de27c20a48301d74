"""Learning curves of training runs as one PNG: validation PESQ-WB (hard path) against steps and
against wall-clock hours, one line per run.

Reads ``metrics.jsonl`` of trainer runs (``neurocodec train``: ``val/pesq_wb``, wall time from
the checkpoints' metadata is not logged per line, so the x axis of those is steps only unless
the lines carry ``wall_s``) and of ``scripts/diagnose_ae.py`` runs (``val/pesq``, ``wall_s``).

    python scripts/plot_curves.py --out docs/img/diagnosis.png \\
        seg=/work/data-cmrl/diag/seg file=/work/data-cmrl/diag/file
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

KEYS = ("val/pesq_wb", "val/pesq")


def read(run: Path, keys=KEYS) -> tuple[list[int], list[float], list[float]]:
    steps, wall, pesq = [], [], []
    for line in (run / "metrics.jsonl").read_text().splitlines():
        rec = json.loads(line)
        key = next((k for k in keys if k in rec), None)
        if key is None or rec[key] != rec[key]:  # absent or NaN
            continue
        steps.append(int(rec["step"]))
        wall.append(float(rec.get("wall_s", float("nan"))) / 3600.0)
        pesq.append(float(rec[key]))
    return steps, wall, pesq


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", help="LABEL=RUN_DIR (a folder with metrics.jsonl)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--title", default="validation PESQ-WB (hard path)")
    ap.add_argument("--hline", action="append", default=[], help="LABEL=VALUE reference line")
    ap.add_argument("--xlabel", default="step")
    ap.add_argument("--key", action="append", default=[],
                    help="metric to plot (repeatable; default val/pesq_wb or val/pesq), e.g. test_real/pesq")
    a = ap.parse_args(argv)
    curves = []
    for item, key in [(r, k) for r in a.runs for k in (a.key or [None])]:
        label, _, path = item.partition("=")
        steps, wall, pesq = read(Path(path), (key,) if key else KEYS)
        if key and len(a.key) > 1:
            label = f"{label}, {key.split('/')[0]}"
        if not steps:
            print(f"{label}: no PESQ lines in {path}", file=sys.stderr)
            continue
        curves.append((label, steps, wall, pesq))
    timed = any(all(w == w for w in wall) for _, _, wall, _ in curves)  # a wall-clock panel only when some run has it
    fig, axes = plt.subplots(1, 2 if timed else 1, figsize=(11, 4) if timed else (6, 4), sharey=True, squeeze=False)
    axes = axes[0]
    for label, steps, wall, pesq in curves:
        axes[0].plot(steps, pesq, marker=".", label=label)
        if timed and all(w == w for w in wall):
            axes[1].plot(wall, pesq, marker=".", label=label)
        print(f"{label}: {len(steps)} points, last step {steps[-1]}, PESQ-WB {pesq[-1]:.3f}, best {max(pesq):.3f}")
    for item in a.hline:
        label, _, value = item.partition("=")
        for ax in axes:
            ax.axhline(float(value), ls="--", lw=0.8, color="grey")
        axes[0].annotate(label, (0, float(value)), fontsize=8, va="bottom")
    axes[0].set_xlabel(a.xlabel)
    if timed:
        axes[1].set_xlabel("wall-clock hours (shared 2-core CPU)")
    axes[0].set_ylabel("PESQ-WB")
    for ax in axes:
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(a.title)
    fig.tight_layout()
    a.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(a.out, dpi=90)
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
