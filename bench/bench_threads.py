"""Speed of the learned codecs with torch's default thread count against one thread.

Runs ``neurocodec encode`` and ``decode`` of the same input with ``--threads 0`` (torch's
default: one thread per core) and ``--threads 1``, alternating, ``--repeat`` times each, in
fresh processes, and prints the best wall time of each as a multiple of real time.  The CLI's
default (``cli.DEFAULT_THREADS``) was chosen with this script (issue 11).

    python bench/bench_threads.py                     # cq and cmrl on 20 s of speech
    python bench/bench_threads.py --seconds 10 --codecs cmrl --repeat 2
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_long_input import make_input  # noqa: E402


def wall(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--codecs", nargs="*", default=["cq", "cmrl"])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    import torch

    cli = [sys.executable, "-m", "neurocodec"]
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "in.wav"
        make_input(wav, args.seconds)
        print(f"{args.seconds:g} s of speech; {os.cpu_count()} CPUs, torch default {torch.get_num_threads()} threads, "
              f"load {os.getloadavg()[0]:.1f}; best of {args.repeat}")
        print(f"{'codec':<6} {'threads':>8} {'enc xRT':>8} {'dec xRT':>8}")
        for cid in args.codecs:
            enc, dec = Path(tmp) / "a.ncdc", Path(tmp) / "a.wav"
            best = {}
            for _ in range(args.repeat):
                for n in (0, 1):
                    te = wall(cli + ["encode", str(wav), str(enc), "--codec", cid, "-q", "--threads", str(n)])
                    td = wall(cli + ["decode", str(enc), str(dec), "-q", "--threads", str(n)])
                    b = best.setdefault(n, [float("inf"), float("inf")])
                    b[0], b[1] = min(b[0], te), min(b[1], td)
            for n in (0, 1):
                label = "default" if n == 0 else "1"
                print(f"{cid:<6} {label:>8} {args.seconds / best[n][0]:>8.2f} {args.seconds / best[n][1]:>8.2f}",
                      flush=True)


if __name__ == "__main__":
    main()
