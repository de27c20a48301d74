#!/usr/bin/env python3
"""Speed, bitrate accuracy and quality of the ``mdct`` codec on the example clips.

Prints, for examples/speech.flac and examples/music.flac at 8, 16, 24 and 32 kbps: the
measured bitrate (payload + 64 bits container framing per chunk; and the whole ``.ncdc``
file, header and end marker included), PESQ-WB, SNR, and encode/decode real-time factors
(audio seconds per CPU second, one thread, best of ``--repeat`` runs).

    .venv/bin/python bench/bench_mdct.py [--repeat 3] [--no-pesq] [--set noise_fill=0]

``--set KEY=VALUE`` overrides decoder-side ``MdctConfig`` fields that the shipped tables do
not depend on (``noise_fill``, ``recon_offset``), e.g. to measure noise filling.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402
import torch  # noqa: E402

from _timing import best_time  # noqa: E402
from neurocodec.api import payload_budget  # noqa: E402
from neurocodec.codecs.mdct import MdctCodec, MdctConfig  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FILE_OVERHEAD_BITS = 8 * (50 + 8)  # .ncdc header for "mdct" + end marker


def best_cpu_time(fn, repeat: int) -> float:
    return best_time(fn, repeat, time.process_time)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-pesq", action="store_true")
    ap.add_argument("--bitrates", default="8,16,24,32")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args()
    torch.set_num_threads(1)
    over = {k: float(v) for k, _, v in (item.partition("=") for item in args.set)}
    codec = MdctCodec(dataclasses.replace(MdctConfig(), **over))
    print(f"mdct codec, config hash {codec.config_hash():08x}, {codec.config.num_bands} bands, "
          f"M={codec.config.num_quantizers}, noise fill {codec.config.noise_fill}")
    print("| clip | target kbps | payload+framing kbps | file kbps | PESQ-WB | SNR dB | encode xRT | decode xRT |")
    print("|---|---|---|---|---|---|---|---|")
    for name in ("speech", "music"):
        x, sr = sf.read(str(ROOT / "examples" / f"{name}.flac"), dtype="float32", always_2d=True)
        x = np.ascontiguousarray(x.T)
        seconds = x.shape[1] / sr
        for kbps in (float(b) for b in args.bitrates.split(",")):
            budget = payload_budget(codec, kbps, x.shape[0], x.shape[1], 16000, x.shape[1])  # as neurocodec.api
            enc = codec.compress(x, kbps, payload_budget_bytes=budget)
            y = codec.decompress(enc.chunks, x.shape[0], x.shape[1], kbps)
            t_enc = best_cpu_time(lambda: codec.compress(x, kbps, payload_budget_bytes=budget), args.repeat)
            t_dec = best_cpu_time(lambda: codec.decompress(enc.chunks, x.shape[0], x.shape[1], kbps), args.repeat)
            bits = 8 * enc.num_bytes + 64 * len(enc.chunks)
            snr = 10 * np.log10(np.sum(x.astype(np.float64) ** 2) / np.sum((x - y).astype(np.float64) ** 2))
            if args.no_pesq:
                p = "-"
            else:
                from pesq import pesq
                p = f"{pesq(16000, x[0], y[0], 'wb'):.2f}"
            print(f"| {name} | {kbps:g} | {bits / seconds / 1000:.3f} | "
                  f"{(bits + FILE_OVERHEAD_BITS) / seconds / 1000:.3f} | {p} | {snr:.1f} | "
                  f"{seconds / t_enc:.0f} | {seconds / t_dec:.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
