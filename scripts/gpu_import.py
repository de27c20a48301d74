#!/usr/bin/env python3
"""Turn what scripts/gpu_train.py left in $OUT into run folders, and optionally into shipped weights.

    python scripts/gpu_import.py /work/.device/.../out --runs runs/gpu              # run folders only
    python scripts/gpu_import.py OUT_DIR --runs runs/gpu --export --data corpus16/manifest.jsonl
    python scripts/gpu_import.py OUT_DIR --runs /tmp/r --export --only cq-16k --dest /tmp/w --plain-export \
        --export-args '--fit-seconds 30'

Every job in the packs (``pack-K.safetensors``; a job too large for one file is split over
several, each holding part of its tensors: all its parts must be there) becomes ``RUNS/NAME/checkpoints/step_N.pt``: a
training checkpoint with the job's recipe, step, metrics and run metadata and its model weights
(float32), but no optimizer state, so it is continued with ``neurocodec train ... --init
RUNS/NAME`` rather than ``--resume``.  The metadata records the pack file, and ``manifest`` names
the corpus manifest the audio pack was made from (so that an export fits the entropy coder on
the same training audio).  With ``--export`` each job is then exported as ``neurocodec export
RUNS/NAME --name NAME --data MANIFEST --allow-incomplete --force`` plus the job's export
arguments from the plan (``--plain-export``: without them), into ``--dest`` (default: the
package's weights folder, src/neurocodec/assets/weights).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
PACK_FORMAT = "neurocodec-gpu-pack"


class ImportErrorOfPack(Exception):
    """A pack cannot be read or lacks what was asked for (one line, exit status 2)."""


def read_packs(paths: list[Path]) -> dict[str, tuple[dict, dict]]:
    """``{job name: (record, tensors)}`` of every pack file among ``paths`` (files or folders)."""
    from safetensors import safe_open

    files: list[Path] = []
    for p in paths:
        files += sorted(p.glob("pack-*.safetensors")) if p.is_dir() else [p]
    if not files:
        raise ImportErrorOfPack(f"no pack-*.safetensors in {', '.join(map(str, paths))}")
    jobs: dict[str, tuple[dict, dict]] = {}
    parts: dict[str, dict[int, str]] = {}  # job -> {part index: file}
    for f in files:
        try:
            with safe_open(str(f), framework="pt") as sf:
                meta = sf.metadata() or {}
                if meta.get("format") != PACK_FORMAT:
                    raise ImportErrorOfPack(f"{f} is not a gpu_train.py pack")
                pack_meta = json.loads(meta.get("pack", "{}"))
                for key, value in meta.items():
                    if not key.startswith("job/"):
                        continue
                    name = key[4:]
                    rec = json.loads(value)
                    rec["pack_file"], rec["pack"] = f.name, pack_meta
                    prefix = f"{name}/"
                    tensors = {k[len(prefix):]: sf.get_tensor(k) for k in sf.keys() if k.startswith(prefix)}
                    if name in jobs:  # another part of a job split over several files
                        first = jobs[name][0]
                        if (first["checkpoint"], first.get("parts")) != (rec["checkpoint"], rec.get("parts")):
                            raise ImportErrorOfPack(f"{name}: {f.name} holds a part of {rec['checkpoint']}, "
                                                    f"{first['pack_file']} one of {first['checkpoint']} (packs "
                                                    "of different moments: use the files of one run)")
                        jobs[name][1].update(tensors)
                    else:
                        jobs[name] = (rec, tensors)
                    parts.setdefault(name, {})[int(rec.get("part", 1))] = f.name
        except ImportErrorOfPack:
            raise
        except Exception as e:
            raise ImportErrorOfPack(f"cannot read {f}: {type(e).__name__}: {e}") from None
    for name, (rec, _) in jobs.items():
        want = set(range(1, int(rec.get("parts", 1)) + 1))
        if set(parts[name]) != want:
            raise ImportErrorOfPack(f"{name} is split over {len(want)} pack files, but only part(s) "
                                    f"{sorted(parts[name])} are here ({', '.join(sorted(parts[name].values()))})")
        rec["pack_file"] = ",".join(parts[name][i] for i in sorted(want))
    return jobs


def write_run(runs: Path, name: str, rec: dict, tensors: dict) -> Path:
    """``runs/NAME`` with one checkpoint rebuilt from a pack record (see the module docstring)."""
    import torch

    from neurocodec.audio import atomic_write_bytes
    from neurocodec.train.checkpoint import checkpoint_path, list_checkpoints, save_checkpoint

    run_dir = runs / name
    if list_checkpoints(run_dir):
        raise ImportErrorOfPack(f"{run_dir} already holds checkpoints; choose another --runs")
    model = {k: (v.to(torch.float32) if v.dtype in (torch.float16, torch.bfloat16) else v) for k, v in tensors.items()}
    meta = dict(rec.get("meta") or {})
    header = (rec.get("pack") or {}).get("data_header") or {}
    meta.update(gpu_pack={"file": rec["pack_file"], "checkpoint": rec["checkpoint"], "stored_dtype": rec["dtype"],
                          "data": meta.get("manifest"), "gpu": (rec.get("pack") or {}).get("gpu")},
                manifest=header.get("manifest"), manifest_sha256=header.get("manifest_sha256"))
    state = {"recipe": rec["recipe"], "step": rec["step"], "total_steps": rec["total_steps"],
             "phase": rec.get("phase"), "model": model, "meta": meta, "metrics": rec.get("metrics", {}),
             "imported_from_gpu_pack": True}
    save_checkpoint(state, checkpoint_path(run_dir, rec["step"]))
    atomic_write_bytes(run_dir / "recipe.json", (json.dumps(rec["recipe"], indent=2) + "\n").encode())
    return run_dir


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("packs", nargs="+", type=Path, help="the $OUT folder that came back, or pack files")
    ap.add_argument("--runs", type=Path, default=ROOT / "runs" / "gpu", help="where the run folders go")
    ap.add_argument("--only", default="", help="comma-separated job names")
    ap.add_argument("--export", action="store_true", help="then export every job with `neurocodec export`")
    ap.add_argument("--data", default=None, metavar="MANIFEST",
                    help="corpus manifest for the export (default: the one the audio pack was made from)")
    ap.add_argument("--dest", default=None, help="weights folder (default: src/neurocodec/assets/weights)")
    ap.add_argument("--plain-export", action="store_true", help="ignore the plan's export arguments")
    ap.add_argument("--export-args", default="", metavar="'ARGS'",
                    help="more `neurocodec export` arguments for every job, e.g. '--fit-seconds 60'")
    ap.add_argument("--threads", type=int, default=1, metavar="N",
                    help="torch threads of the exports (default 1: a CMRL export with --trim-rate took 2 min "
                         "with one thread, 15-20 min with the default threads beside another job on 2 cores)")
    a = ap.parse_args(argv)
    from neurocodec.cli import main as cli_main

    try:
        jobs = read_packs(a.packs)
        only = [s for s in a.only.split(",") if s]
        missing = sorted(set(only) - set(jobs))
        if missing:
            raise ImportErrorOfPack(f"--only: not in the packs: {', '.join(missing)} (packs hold {', '.join(sorted(jobs))})")
        names = [n for n in sorted(jobs) if not only or n in only]
        made = {}
        for name in names:
            rec, tensors = jobs[name]
            made[name] = write_run(a.runs, name, rec, tensors)
            m = rec.get("metrics", {})
            print(f"{made[name]}: step {rec['step']} ({rec['pack_file']}, stored {rec['dtype']}); "
                  + ", ".join(f"{k}={v:.4g}" for k, v in sorted({**m.get('train', {}), **m.get('val', {})}.items())
                              if k in ("train/loss", "rate/estimated_kbps", "val/metrics/snr_db",
                                       "train/steps_per_second")))
    except ImportErrorOfPack as e:
        print(f"gpu_import: error: {e}", file=sys.stderr)
        return 2
    if not a.export:
        return 0
    import torch

    torch.set_num_threads(max(1, a.threads))
    status = 0
    for name in names:
        rec = jobs[name][0]
        data = a.data or ((rec.get("pack") or {}).get("data_header") or {}).get("manifest")
        argv = ["export", str(made[name]), "--name", name, "--allow-incomplete", "--force"]
        if data:
            argv += ["--data", str(data)]
        if a.dest:
            argv += ["--dest", a.dest]
        if not a.plain_export:
            argv += list(rec["job"].get("export") or [])
        argv += shlex.split(a.export_args)
        print("neurocodec " + " ".join(argv), flush=True)
        rc = cli_main(argv)
        status = status or rc
    return status


if __name__ == "__main__":
    sys.exit(main())
