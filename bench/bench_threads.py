"""Speed of the learned codecs with torch's default thread count against one thread.

Loads each codec once and times ``compress`` and ``decompress`` of the same input (the example
speech, repeated to ``--seconds``) with ``torch.set_num_threads(default)`` and ``(1)``,
alternating, ``--repeat`` times each, and prints the best wall time of each as a multiple of
real time (process start-up and model loading excluded).  The CLI's default
(``cli.DEFAULT_THREADS``, ``--threads``) was chosen with this script (issue 11).

    python bench/bench_threads.py                     # cq and cmrl on 4 s of speech
    python bench/bench_threads.py --seconds 10 --codecs cq --repeat 5
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--codecs", nargs="*", default=["cq", "cmrl"])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    import torch

    from neurocodec.codecs.registry import create

    default = torch.get_num_threads()
    x, sr = sf.read(ROOT / "examples" / "speech.flac", dtype="float32", always_2d=True)
    n = int(args.seconds * sr)
    x = np.resize(x[:, 0], n)[None, :].astype(np.float32)
    print(f"{args.seconds:g} s of speech; {os.cpu_count()} CPUs, torch default {default} threads, "
          f"load {os.getloadavg()[0]:.1f}; best of {args.repeat}")
    print(f"{'codec':<6} {'threads':>8} {'enc xRT':>8} {'dec xRT':>8}")
    for cid in args.codecs:
        model = create(cid)
        kbps = model.bitrates.default
        best = {t: [float("inf"), float("inf")] for t in (default, 1)}
        for _ in range(args.repeat):
            for t in (default, 1):
                torch.set_num_threads(t)
                t0 = time.perf_counter()
                enc = model.compress(x, kbps)
                t1 = time.perf_counter()
                model.decompress(enc.chunks, 1, n, enc.bitrate_kbps)
                t2 = time.perf_counter()
                best[t] = [min(best[t][0], t1 - t0), min(best[t][1], t2 - t1)]
        for t in (default, 1):
            label = f"{t} (default)" if t == default else str(t)
            print(f"{cid:<6} {label:>8} {args.seconds / best[t][0]:>8.2f} {args.seconds / best[t][1]:>8.2f}",
                  flush=True)
    torch.set_num_threads(default)


if __name__ == "__main__":
    main()
