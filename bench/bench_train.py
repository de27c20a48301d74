"""Training-loop speed: steps/s of the test model (tests/train/_tiny.py) on this machine.

    .venv/bin/python bench/bench_train.py [--steps 200] [--segment 4096] [--compile]

Prints one row per (batch size, torch threads): steps/s and segments/s of the training loop (the
trainer's own measurement: forward, backward, divergence check, optimizer step; validation and
checkpoints excluded).  ``--compile`` adds rows with ``train.compile=true`` (torch.compile).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "train"))

from _tiny import TinyDataset, register_tiny  # noqa: E402

import torch  # noqa: E402

from neurocodec.train.recipe import make_recipe  # noqa: E402
from neurocodec.train.trainer import Trainer  # noqa: E402


def measure(batch: int, threads: int, steps: int, segment: int, compile_: bool) -> tuple[float, float]:
    recipe = make_recipe("tiny", [f"train.steps={steps}", f"train.batch_size={batch}", f"train.threads={threads}",
                                  f"train.segment_samples={segment}", f"train.compile={compile_}",
                                  "train.log_every=1000000", "train.ckpt_every=1000000"])
    data = TinyDataset(max(4 * batch, 64), segment)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        res = Trainer(recipe, Path(tmp) / "run", data, None, progress=False, tensorboard=False).fit()
        wall = time.perf_counter() - t0
    return res.steps_per_second, wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--segment", type=int, default=4096, help="samples per training segment")
    ap.add_argument("--compile", action="store_true", help="also measure with torch.compile")
    args = ap.parse_args()
    register_tiny()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"torch {torch.__version__}, {os.cpu_count()} CPU cores, load average {load:.1f}; "
          f"test model, {args.segment}-sample segments, {args.steps} steps per row")
    print(f"{'batch':>5} {'threads':>7} {'compile':>7} {'steps/s':>9} {'segments/s':>10} {'wall s':>7}")
    modes = [False, True] if args.compile else [False]
    for compile_ in modes:
        for threads in (1, 2):
            for batch in (8, 16, 32):
                sps, wall = measure(batch, threads, args.steps, args.segment, compile_)
                print(f"{batch:>5} {threads:>7} {str(compile_):>7} {sps:>9.1f} {sps * batch:>10.0f} {wall:>7.1f}",
                      flush=True)


if __name__ == "__main__":
    main()
