"""Rate, quality and speed of the classic baselines on examples/speech.flac.

For every available baseline and bitrate of its ladder this prints the nominal and measured
bitrate (8 * payload bytes / duration, per channel), PESQ-WB (ITU-T P.862.2, through the
``pesq`` package, output resampled to 16 kHz) and the encode / decode real-time factors
(compute seconds per second of audio, best of ``--repeat`` runs; lower is faster).

    .venv/bin/python bench/bench_baselines.py [--codecs opus,amrwb] [--input FILE] [--repeat 3]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from pesq import pesq

from neurocodec import baselines
from neurocodec.audio import read_audio, resample

LADDERS = {
    "opus": (6, 9, 12, 16, 24, 32),
    "amrwb": (6.6, 8.85, 12.65, 14.25, 15.85, 18.25, 19.85, 23.05, 23.85),
    "codec2": (0.7, 1.2, 1.3, 1.4, 1.6, 2.4, 3.2),
    "speex": (3.95, 5.75, 7.75, 9.8, 12.8, 16.8, 20.6, 23.8, 27.8, 34.2, 42.2),
    "lc3": (16, 24, 32, 48, 64),
    "mp3": (8, 16, 24, 32, 48, 64),
    "aac": (12, 16, 24, 32, 48, 64),
}


def best_time(fn, repeat: int):
    best, result = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--codecs", default=",".join(LADDERS), help="comma-separated baseline ids")
    ap.add_argument("--input", default=str(Path(__file__).resolve().parents[1] / "examples" / "speech.flac"))
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    x, sr = read_audio(args.input)
    x = x.mean(axis=0, keepdims=True)
    ref16 = resample(x, sr, 16000)[0]
    duration = x.shape[1] / sr
    status = baselines.available()
    print(f"input: {args.input} ({duration:.2f} s, mono); RTF = compute time / audio duration")
    print(f"{'codec':7} {'nominal':>8} {'measured':>9} {'PESQ-WB':>8} {'enc RTF':>8} {'dec RTF':>8}  delay removed")
    for codec_id in args.codecs.split(","):
        if status.get(codec_id) is not True:
            print(f"{codec_id:7} unavailable: {status.get(codec_id, 'unknown baseline')}")
            continue
        codec = baselines.create(codec_id)
        xc = resample(x, sr, codec.sample_rate)
        for kbps in LADDERS[codec_id]:
            t_enc, enc = best_time(lambda: codec.compress(xc, kbps), args.repeat)
            t_dec, y = best_time(lambda: codec.decompress(enc.chunks, 1, enc.num_samples, enc.bitrate_kbps),
                                 args.repeat)
            measured = 8 * enc.num_bytes / duration / 1000
            deg = resample(y, codec.sample_rate, 16000)[0][: ref16.shape[0]]
            score = pesq(16000, ref16, np.ascontiguousarray(deg), "wb")
            delay_ms = 1000 * codec.delay(kbps) / codec.sample_rate
            print(f"{codec_id:7} {kbps:8.2f} {measured:9.3f} {score:8.3f} {t_enc / duration:8.4f} "
                  f"{t_dec / duration:8.4f}  {delay_ms:.1f} ms")


if __name__ == "__main__":
    main()
