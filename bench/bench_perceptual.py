"""Speed of the byun2023 coder's pieces on this machine (one torch thread).

Prints: the PAM-1 masking thresholds of a batch of frames (global + local), one training step
with and without precomputed thresholds, the coder's encode/decode speed (x real time), and
the two ways of range coding the HPM latents with per-symbol tables: one probability row per
symbol (``RangeEncoder.encode(..., indexes=)``) versus grouped by table row
(:class:`~neurocodec.entropy.tables.TableSet`, what the codec uses), and the encoding speed of
the shipped 16 kbps models on examples/speech.flac with the per-file rate control on and off
(:mod:`neurocodec.codecs.perceptual_rate`; the FEM's grid tables are built on first use, so the
first encode is timed apart).

    python bench/bench_perceptual.py [--frames 32] [--channels 24]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch


sys.path.insert(0, __file__.rsplit("/", 1)[0])
from _timing import best_time  # noqa: E402


def _time(fn, repeat=3):
    return best_time(fn, repeat)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=32)
    ap.add_argument("--channels", type=int, default=24)
    args = ap.parse_args()
    torch.set_num_threads(1)

    from neurocodec.codecs.perceptual import PerceptualHpmCodec, perceptual_config
    from neurocodec.dsp.pam1 import PerceptualLoss
    from neurocodec.entropy.gaussian import gaussian_tables
    from neurocodec.entropy.range_coder import RangeEncoder

    x = 0.1 * torch.randn(args.frames, 512)
    loss = PerceptualLoss()
    t_mask = _time(lambda: loss.masks(x))
    print(f"PAM-1 thresholds, {args.frames} frames (global + 7 subframes): {1000 * t_mask:.1f} ms")

    cfg = perceptual_config(16, "hpm", channels=args.channels, bottleneck_channels=args.channels // 2,
                            hyper_channels=16, hyper_latent=4)
    m = PerceptualHpmCodec(cfg).train()
    m.set_phase("quantize")
    batch = x[:, None, :]

    def step():
        out = m.training_step(batch, 0)
        out["loss"].backward()

    t_step = _time(step)
    print(f"training step, {args.frames} frames, C={args.channels}: {1000 * t_step:.1f} ms "
          f"(of which thresholds {100 * t_mask / t_step:.0f}%; precomputing them per item would save at most that)")

    m.eval()
    audio = (0.1 * np.random.default_rng(0).standard_normal((1, 16000 * 4))).astype(np.float32)
    t_enc = _time(lambda: m.compress(audio, 16), repeat=1)
    enc = m.compress(audio, 16)
    t_dec = _time(lambda: m.decompress(enc.chunks, 1, audio.shape[1], 16), repeat=1)
    print(f"coder (untrained HPM, C={args.channels}): encode {4 / t_enc:.1f}x real time, decode {4 / t_dec:.1f}x")

    t = gaussian_tables()
    rng = np.random.default_rng(1)
    rows = rng.integers(0, t.num_rows, 256 * 64)
    vals = np.rint(rng.standard_normal(rows.size) * np.exp(rows / 12)).astype(np.int64)

    def grouped():
        t.encode(RangeEncoder(), vals, rows)

    def per_symbol():
        sym = vals - t.offsets[rows]
        esc = (sym < 0) | (sym >= t.sizes[rows])
        RangeEncoder().encode(np.where(esc, t.sizes[rows], sym), t.cdfs, rows)

    tg, tp = _time(grouped), _time(per_symbol)
    print(f"range coding {rows.size} latents (64 frames): grouped by row {1000 * tg:.1f} ms, "
          f"one table row per symbol {1000 * tp:.1f} ms")

    from pathlib import Path

    from neurocodec.audio import read_audio
    from neurocodec.codecs.perceptual import fem_family, hpm_family

    wav, sr = read_audio(Path(__file__).resolve().parents[1] / "examples" / "speech.flac")
    sec = wav.shape[1] / sr
    for fam in (fem_family(), hpm_family()):
        if not fam.weights_path(16.0).is_file():
            continue
        model = fam.model_for(16.0)
        model.set_file_rate_control(True)
        t_first = _time(lambda: model.compress(wav, 16), repeat=1)
        t_on = _time(lambda: model.compress(wav, 16), repeat=2)
        model.set_file_rate_control(False)
        t_off = _time(lambda: model.compress(wav, 16), repeat=2)
        model.set_file_rate_control(True)
        print(f"{fam.codec_id}-16k encode of {sec:.1f} s: rate control on {sec / t_on:.1f}x real time "
              f"(first call {sec / t_first:.1f}x), off {sec / t_off:.1f}x")


if __name__ == "__main__":
    main()
