#!/usr/bin/env python3
"""Train the code language model of an exported EnCodec (defossez2022 §3.3) and add it to the weights.

    python scripts/train_encodec_lm.py WEIGHTS_DIR --data MANIFEST [--max-seconds 1800] [--dim 32 ...]

Encodes the manifest's training split (resampled to the codec's rate) into RVQ codes with all the
model's codebooks, then trains a :class:`~neurocodec.codecs.encodec_lm.CodeLM` by cross-entropy:
each step draws a bandwidth of the model's ladder (its number of codebooks), sequences of
``--frames`` frames and a random offset of the sinusoidal positions (the paper's "emulate being in
a longer sequence"); Adam.  Checkpoints to ``WEIGHTS_DIR/lm_checkpoint.pt`` every ``--ckpt-every``
steps (``--resume`` continues); at the end the LM is added to ``WEIGHTS_DIR/model.safetensors``
(fp16 like the rest) and the held-out bits per code, static tables vs LM, are written to
``WEIGHTS_DIR/lm_training.json`` and appended to the model card.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch

from neurocodec.codecs.encodec import EncodecCodec
from neurocodec.codecs.encodec_lm import CodeLM
from neurocodec.train.export import manifest_signals


def encode_split(codec: EncodecCodec, manifest: str, split: str, seconds: float) -> list[np.ndarray]:
    out = []
    with torch.no_grad():
        for x in manifest_signals(manifest, split, (), codec.sample_rate, seconds):
            f = codec.net.encode(torch.from_numpy(x)[None], codec.config.n_q)[0]
            out.append(f.codes[0].numpy())
    return out


def static_bits(codec: EncodecCodec, codes: list[np.ndarray], n_q: int) -> float:
    cdf = codec.static_cdf[:n_q].numpy().astype(np.float64)
    p = np.diff(cdf, axis=1) / cdf[:, -1:]
    bits = n = 0.0
    for c in codes:
        bits += -np.log2(p[np.arange(n_q)[:, None], c[:n_q]]).sum()
        n += c[:n_q].size
    return bits / n


def lm_bits(codec: EncodecCodec, codes: list[np.ndarray], n_q: int) -> float:
    from neurocodec.codecs.encodec_lm import IntegerLM, LmCodingState

    ilm = IntegerLM(codec.lm)
    bits = n = 0.0
    for c in codes:
        st = LmCodingState(ilm, n_q)
        for a in range(0, c.shape[1], 375):
            part = c[:n_q, a:a + 375]
            cdf = st.cdfs_for(part)  # (T, n_q, card + 1)
            p = np.diff(cdf, axis=-1) / 2.0 ** 20
            bits += -np.log2(np.take_along_axis(p, part.T[..., None], -1)).sum()
            n += part.size
    return bits / n


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("weights_dir")
    ap.add_argument("--data", required=True)
    ap.add_argument("--train-seconds", type=float, default=1800.0, help="training audio to encode")
    ap.add_argument("--valid-seconds", type=float, default=120.0)
    ap.add_argument("--max-seconds", type=float, default=1800.0, help="wall-clock budget of the LM training")
    ap.add_argument("--steps", type=int, default=100000)
    ap.add_argument("--frames", type=int, default=150, help="sequence length (the paper: 5 s = 375)")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--dim", type=int, default=32)
    ap.add_argument("--layers", type=int, default=5)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--ff", type=int, default=128)
    ap.add_argument("--ckpt-every", type=int, default=200)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    wdir = Path(args.weights_dir)
    codec = EncodecCodec.from_pretrained(wdir / "model.safetensors")
    cfg = replace(codec.config, lm_n_q=codec.config.n_q, lm_dim=args.dim, lm_layers=args.layers,
                  lm_heads=args.heads, lm_ff=args.ff)
    t0 = time.time()
    train = encode_split(codec, args.data, "train", args.train_seconds)
    valid = encode_split(codec, args.data, "valid", args.valid_seconds)
    print(f"encoded {sum(c.shape[1] for c in train)} training frames, {sum(c.shape[1] for c in valid)} valid "
          f"frames in {time.time() - t0:.0f} s", file=sys.stderr)
    train = [c for c in train if c.shape[1] > args.frames]
    lm = CodeLM(cfg.lm_n_q, cfg.bins, cfg.lm_dim, cfg.lm_layers, cfg.lm_heads, cfg.lm_ff,
                int(cfg.lm_context_seconds * codec.frame_rate))
    opt = torch.optim.Adam(lm.parameters(), lr=args.lr)
    ckpt = wdir / "lm_checkpoint.pt"
    step = 0
    if args.resume and ckpt.is_file():
        st = torch.load(ckpt, weights_only=True)
        lm.load_state_dict(st["lm"])
        opt.load_state_dict(st["opt"])
        step = int(st["step"])
    rng = random.Random(step)
    ladder = [codec.n_q_for(b) for b in cfg.bandwidths]
    t0 = time.time()
    while step < args.steps and time.time() - t0 < args.max_seconds:
        n_q = rng.choice(ladder)
        batch = []
        for _ in range(args.batch):
            c = rng.choice(train)
            a = rng.randrange(0, c.shape[1] - args.frames)
            batch.append(c[:n_q, a:a + args.frames])
        codes = torch.from_numpy(np.stack(batch))
        loss = lm.loss(codes, offset=rng.randrange(0, 10000))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(lm.parameters(), 1.0)
        opt.step()
        step += 1
        if step % 50 == 0:
            print(f"step {step} n_q {n_q} loss {loss.item() / math.log(2):.3f} bits/code "
                  f"{step / (time.time() - t0):.2f} steps/s", file=sys.stderr, flush=True)
        if step % args.ckpt_every == 0:
            torch.save({"lm": lm.state_dict(), "opt": opt.state_dict(), "step": step}, ckpt)
    torch.save({"lm": lm.state_dict(), "opt": opt.state_dict(), "step": step}, ckpt)

    out = EncodecCodec(cfg, codec_id=codec.codec_id)
    out.load_state_dict({**codec.state_dict(), **{f"lm.{k}": v for k, v in lm.state_dict().items()}}, strict=False)
    with torch.no_grad():
        for p in out.lm.parameters():  # shipped in fp16 like the codec
            p.copy_(p.half().float())
    out.eval()
    report = {"steps": step, "dim": args.dim, "layers": args.layers, "heads": args.heads, "ff": args.ff,
              "frames": args.frames, "batch": args.batch, "lm_parameters": sum(p.numel() for p in lm.parameters()),
              "valid_bits_per_code": {}}
    for b in cfg.bandwidths:
        n_q = out.n_q_for(b)
        s, lmb = static_bits(out, valid, n_q), lm_bits(out, valid, n_q)
        report["valid_bits_per_code"][f"{b:g}"] = {"static": s, "lm": lmb, "lm_saving_vs_10_bits": 1 - lmb / 10,
                                                    "lm_saving_vs_static": 1 - lmb / s}
        print(f"{b:g} kbps: static {s:.3f}, LM {lmb:.3f} bits/code", file=sys.stderr)
    path = wdir / "model.safetensors"
    out_fp16 = out
    for t in list(out_fp16.parameters()) + list(out_fp16.buffers()):
        if t.dtype == torch.float32:
            t.data = t.data.half()
    out_fp16.save_pretrained(path)
    (wdir / "lm_training.json").write_text(json.dumps(report, indent=2) + "\n")
    card = wdir / "MODEL_CARD.md"
    if card.is_file():
        rows = "\n".join(f"| {k} | {v['static']:.3f} | {v['lm']:.3f} | {100 * v['lm_saving_vs_static']:.1f}% |"
                         for k, v in report["valid_bits_per_code"].items())
        card.write_text(card.read_text() + f"\n## Code language model (added by scripts/train_encodec_lm.py)\n\n"
                        f"{report['lm_parameters']:,} parameters (dim {args.dim}, {args.layers} layers, {args.heads} "
                        f"heads, FF {args.ff}), {step} steps of {args.batch} x {args.frames} frames on CPU. "
                        f"Held-out bits per code:\n\n| kbps | static tables | LM | LM saving |\n|---|---|---|---|\n"
                        f"{rows}\n\nThe weights file was rewritten with the LM, so the digests above no longer "
                        f"cover model.safetensors.\n")
    print(json.dumps(report["valid_bits_per_code"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
