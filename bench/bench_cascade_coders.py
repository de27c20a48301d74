"""Pair Huffman vs range coding of the shipped CMRL/LPC-CMRL/CQ models, and their coding speed.

For every shipped operating point, the same symbols are coded with the model's pair-Huffman
tables and with the range coder built from the same counts, at the trained quantizer step
(file-level rate control off, so that both code the same symbols); the file bitrate
(container included) of each, and the encode/decode time per audio second (one torch
thread) of the shipped setting (the shorter coder per chunk, with the file-level rate
control) and of the encoder without the rate control are printed.

    python bench/bench_cascade_coders.py [--data examples/speech.flac] [--seconds 20]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np
import torch

import neurocodec
from neurocodec.api import Codec, payload_budget
from neurocodec.audio import read_audio, resample


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="examples/speech.flac", help="audio file to code")
    ap.add_argument("--seconds", type=float, default=20.0, help="at most this much of it")
    args = ap.parse_args()
    torch.set_num_threads(1)
    x, sr = read_audio(args.data)
    x = resample(x.mean(axis=0, keepdims=True), sr, 16000)[:, : int(args.seconds * 16000)]
    dur = x.shape[1] / 16000
    print(f"{args.data}: {dur:.1f} s")
    print(f"{'model':<14} {'huffman kbps':>12} {'range kbps':>10} {'range/huff':>10} {'enc s/s':>8} {'dec s/s':>8} "
          f"{'enc s/s, no rate control':>24}")
    for cid in ("cmrl", "lpc-cmrl", "cq"):
        family = neurocodec.load(cid).model
        for kbps in family.bitrates.choices:
            if not family.weights_path(kbps).is_file():
                print(f"{cid}-{kbps:g}k: no weights")
                continue
            shipped = family.model_for(kbps)
            sizes = []
            for coder in ("huffman", "range"):
                model = type(shipped)(replace(shipped.config, entropy_coder=coder, file_rate_control=False))
                model.load_state_dict(shipped.state_dict())
                model.eval()
                sizes.append(len(Codec(model).compress(x, 16000, kbps)) * 8 / dur / 1000)
            # timing: the shipped setting (entropy_coder="best" codes both, file_rate_control)
            t = time.perf_counter()
            budget = payload_budget(shipped, kbps, 1, x.shape[1], 16000, x.shape[1])
            enc = shipped.compress(x, kbps, payload_budget_bytes=budget)
            te = time.perf_counter() - t
            t = time.perf_counter()
            y = shipped.decompress(enc.chunks, 1, x.shape[1], kbps)
            td = time.perf_counter() - t
            assert np.isfinite(y).all()
            was = shipped.set_file_rate_control(False)
            t = time.perf_counter()
            shipped.compress(x, kbps)
            te_plain = time.perf_counter() - t
            shipped.set_file_rate_control(was)
            print(f"{cid + '-' + format(kbps, 'g') + 'k':<14} {sizes[0]:12.2f} {sizes[1]:10.2f} "
                  f"{sizes[1] / sizes[0]:10.3f} {te / dur:8.3f} {td / dur:8.3f} {te_plain / dur:24.3f}")


if __name__ == "__main__":
    main()
