"""Aggregation of per-file results into report tables (CSV, JSON, Markdown).

Means are reported with 95% confidence intervals from Student's t distribution over files
(the papers' listening-test figures use the same construction).
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from scipy import stats

from .harness import ItemResult


@dataclass
class Stat:
    mean: float
    ci95: float  # half-width of the 95% confidence interval
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> "Stat":
        v = np.asarray([x for x in values if np.isfinite(x)], dtype=np.float64)
        if v.size == 0:
            return cls(float("nan"), float("nan"), 0)
        if v.size == 1:
            return cls(float(v[0]), float("nan"), 1)
        half = stats.t.ppf(0.975, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size)
        return cls(float(v.mean()), float(half), int(v.size))


@dataclass
class ConditionSummary:
    codec: str
    bitrate: float
    files: int
    measured_kbps: Stat
    encode_rtf: float  # median over files
    decode_rtf: float
    delay_ms: float
    parameters: int
    seconds: float = 0.0  # audio coded (files with a stream)
    total_kbps: float = float("nan")  # 8 * their bytes / seconds: the rate over the whole set
    metrics: dict[str, Stat] = field(default_factory=dict)


def summarize(results: Sequence[ItemResult], metrics: Sequence[str],
              parameters: dict[Any, int] | None = None) -> list[ConditionSummary]:
    """Aggregate per-file results per (codec, bitrate), ordered by codec then bitrate.

    ``parameters`` maps ``(codec, bitrate)`` (learned codecs whose model depends on the
    operating point) or ``codec`` to parameter counts."""
    groups: dict[tuple[str, float], list[ItemResult]] = {}
    for r in results:
        groups.setdefault((r.codec, r.bitrate), []).append(r)
    out = []
    for (codec, br), rs in sorted(groups.items()):
        coded = [r for r in rs if r.file_bytes > 0]
        seconds = sum(r.duration_s for r in coded)
        out.append(ConditionSummary(
            codec=codec, bitrate=br, files=len(rs),
            measured_kbps=Stat.of([r.measured_kbps for r in rs]),
            encode_rtf=float(np.median([r.encode_rtf for r in rs])),
            decode_rtf=float(np.median([r.decode_rtf for r in rs])),
            delay_ms=float(np.median([1000 * r.delay_samples / r.sample_rate for r in rs])),
            parameters=(parameters or {}).get((codec, br), (parameters or {}).get(codec, 0)),
            seconds=seconds,
            total_kbps=8.0 * sum(r.file_bytes for r in coded) / seconds / 1000.0 if seconds else float("nan"),
            metrics={m: Stat.of([r.metrics.get(m, float("nan")) for r in rs]) for m in metrics},
        ))
    return out


def write_csv(results: Sequence[ItemResult], path: Path) -> None:
    rows = [r.flat() for r in results]
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)


def write_json(summaries: Sequence[ConditionSummary], path: Path, meta: dict) -> None:
    def clean(o):
        if isinstance(o, float) and not math.isfinite(o):
            return None
        if isinstance(o, dict):
            return {k: clean(v) for k, v in o.items()}
        if isinstance(o, list):
            return [clean(v) for v in o]
        return o

    path.write_text(json.dumps(clean({"meta": meta, "conditions": [asdict(s) for s in summaries]}), indent=2))


def _fmt(s: Stat, digits: int = 2) -> str:
    if s.n == 0:
        return "–"
    if not math.isfinite(s.ci95):
        return f"{s.mean:.{digits}f}"
    return f"{s.mean:.{digits}f} ± {s.ci95:.{digits}f}"


def markdown_table(summaries: Sequence[ConditionSummary], metrics: Sequence[str]) -> str:
    """A Markdown table: one row per codec and bitrate, mean ± 95% CI per metric."""
    head = ["codec", "nominal kbps", "measured kbps", *metrics, "enc ×RT", "dec ×RT", "params", "files"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in summaries:
        row = [s.codec, f"{s.bitrate:g}", f"{s.measured_kbps.mean:.2f}", *[_fmt(s.metrics[m]) for m in metrics],
               f"{s.encode_rtf:.0f}", f"{s.decode_rtf:.0f}", f"{s.parameters:,}" if s.parameters else "–", str(s.files)]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"
