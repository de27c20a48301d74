#!/usr/bin/env python3
"""Decode speed of the generative ``mdct-gen`` decoder (fejgin2020 §3.2 SampleRNN).

Prints decode real-time factors (xRT = seconds of audio per second; > 1 is faster than real
time) of the SampleRNN generation (conditioning precompute + the compiled sample loop, i.e.
everything the generative decoder adds to the ``mdct`` decoder) for the speech and piano
frame sizes at several widths (GRU = MLP width; untrained weights, speed does not depend on
them), with 1 and 2 threads, one realization and the mean of 2 (``--mean 2``: the two
realizations run on separate threads).  Then the whole ``neurocodec`` decode (mdct decode +
generation) of examples/speech.flac with the shipped weights.  Both wall-clock and CPU
(process) time are shown: on a shared machine the wall clock also counts waiting for a core,
so CPU xRT is the figure that says what the code costs.

    .venv/bin/python bench/bench_samplernn.py [--seconds 4] [--widths 32,64,128] [--repeat 2]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from neurocodec.nn.samplernn import SampleRnn, SampleRnnConfig, pad_conditioning
from neurocodec.nn.samplernn_kernel import HAVE_NUMBA, set_threads

ROOT = Path(__file__).resolve().parents[1]


def _timed(fn, repeat: int) -> tuple[float, float]:
    """Best wall and best CPU seconds of ``repeat`` runs."""
    wall, cpu = float("inf"), float("inf")
    for _ in range(repeat):
        w, c = time.perf_counter(), time.process_time()
        fn()
        wall, cpu = min(wall, time.perf_counter() - w), min(cpu, time.process_time() - c)
    return wall, cpu


def bench_model(kind: str, width: int, seconds: float, threads: int, realizations: int, repeat: int):
    cfg = (SampleRnnConfig.speech if kind == "speech" else SampleRnnConfig.piano)(rnn_width=width, mlp_width=width)
    torch.manual_seed(0)
    model = SampleRnn(cfg).eval()
    rng = np.random.default_rng(0)
    T = int(seconds * 16000)
    xp, ep, nb = pad_conditioning((rng.standard_normal(T) * 0.05).astype(np.float32),
                                  rng.integers(-20, 5, (T // 320 + 2, 16)), cfg)
    U = rng.random((realizations, 2, nb * cfg.hop))
    torch.set_num_threads(threads)
    set_threads(threads)
    model.generate(xp[:4 * 320], ep[:4], U[:, :, :320])  # compile / load the kernel
    wall, cpu = _timed(lambda: model.generate(xp, ep, U), repeat)
    return model.num_parameters(), T / 16000 / wall, T / 16000 / cpu


def bench_codec(threads: int, mean: int, repeat: int):
    from neurocodec import api
    from neurocodec.audio import read_audio

    wav, sr = read_audio(ROOT / "examples" / "speech.flac")
    data = api.load("mdct").compress(wav, sr, bitrate=16)
    torch.set_num_threads(threads)
    api.decompress(data, codec="mdct-gen", threads=threads)  # load weights, compile
    wall, cpu = _timed(lambda: api.decompress(data, codec="mdct-gen", mean=mean, threads=threads), repeat)
    dur = wav.shape[-1] / sr
    return dur / wall, dur / cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--widths", default="32,64,128")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--no-codec", action="store_true")
    a = ap.parse_args()
    print(f"numba: {HAVE_NUMBA}; torch {torch.__version__}; {a.seconds:g} s of audio; best of {a.repeat}")
    print("| tiers | width | params | threads | realizations | wall xRT | CPU xRT |")
    print("|---|---|---|---|---|---|---|")
    for kind in ("speech", "piano"):
        for width in (int(w) for w in a.widths.split(",")):
            for threads, reals in ((1, 1), (2, 1), (1, 2), (2, 2)):
                n, w, c = bench_model(kind, width, a.seconds, threads, reals, a.repeat)
                print(f"| {kind} | {width} | {n:,} | {threads} | {reals} | {w:.1f} | {c:.1f} |", flush=True)
    if not a.no_codec:
        print()
        print("whole decode of examples/speech.flac (8 s, 16 kbps) with the shipped mdct-gen weights")
        print("| threads | --mean | wall xRT | CPU xRT |")
        print("|---|---|---|---|")
        for threads, mean in ((1, 1), (2, 1), (2, 2), (2, 10)):
            w, c = bench_codec(threads, mean, a.repeat)
            print(f"| {threads} | {mean} | {w:.1f} | {c:.1f} |", flush=True)


if __name__ == "__main__":
    main()
