"""Diagnosis of the cascade codecs' quality ceiling (issue 12, item 1).

Trains the Table-1 component autoencoder alone (one CMRL module) WITHOUT quantization on the
corpus speech and measures validation PESQ-WB on the inference path of the codec: per-file
gain, the codec's own framing (512-sample frames every 480) and windowed overlap-add
(``CascadeCodec._prepare_channel`` / ``_synthesize_channel``), float32 networks.  The knobs are
the suspects of the issue: the gain normalisation of the training crops (``--gain segment``:
each crop divided by its own RMS, what the trainer did; ``file``: by its file's RMS, what the
encoder does), the learning rate, the loss weights, the crop length and the autocast.

    python scripts/diagnose_ae.py --out /work/data-cmrl/diag/seg --gain segment --steps 3000
    python scripts/diagnose_ae.py --identity      # framing + overlap-add alone: PESQ-WB 4.64

Every ``--eval-every`` steps one JSON line goes to ``OUT/metrics.jsonl`` (step, wall seconds,
mean training loss terms, validation PESQ-WB and SNR of the per-file-gain path, and of the
per-second-gain path ``pesq_chunkgain``: every second normalised by its own RMS, as the
training crops are with ``--gain segment``); ``scripts/plot_curves.py`` plots them.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from torch.nn import functional as F

from neurocodec.codecs.cascade import GAIN_FLOOR, CascadeTraining, LossWeights
from neurocodec.codecs.cmrl import CmrlCodec, CmrlConfig
from neurocodec.data.manifest import Manifest
from neurocodec.eval.metrics_ext import pesq_wb
from neurocodec.nn.cmrl_blocks import AutoencoderConfig

SPEECH = ("speech-real", "speech-tts")


def load_split(manifest: Manifest, split: str, sources=SPEECH, limit: int | None = None) -> list[np.ndarray]:
    recs = [r for r in manifest.filter(split=split, source=list(sources)).records if r.duration > 0]
    out = []
    for r in recs[:limit]:
        x, sr = sf.read(str(manifest.abspath(r)), dtype="float32", always_2d=True)
        assert sr == 16000, sr
        out.append(np.ascontiguousarray(x.mean(1)))
    return out


def build_codec(loss: LossWeights) -> CmrlCodec:
    cfg = CmrlConfig(bitrate_kbps=15.85, modules=(AutoencoderConfig(),),
                     training=CascadeTraining(greedy_lr_factors=(1.0,), loss=loss))
    return CmrlCodec(cfg)


@torch.no_grad()
def decode_file(codec: CmrlCodec, x: np.ndarray, gain_mode: str = "file", block: int = 16000) -> np.ndarray:
    """Inference path without quantization: the codec's framing, the autoencoder in float32,
    its overlap-add.  ``gain_mode="chunk"`` normalises every ``block`` samples by their own RMS."""
    ae = codec.coding_modules[0].autoencoder
    if gain_mode == "chunk":
        return np.concatenate([decode_file(codec, x[i:i + block], "file") for i in range(0, len(x), block)])
    geo = codec.geometry(len(x))
    prep = codec._prepare_channel(x, geo)
    frames = ae(torch.from_numpy(prep.frames))[:, 0, :].float().numpy()
    return codec._synthesize_channel(frames, None, float(prep.gain), geo)


def snr_db(ref: np.ndarray, deg: np.ndarray) -> float:
    ref = ref.astype(np.float64)
    return float(10 * np.log10(np.sum(ref ** 2) / max(np.sum((ref - deg) ** 2), 1e-20)))


def evaluate(codec, files, chunk_gain: bool) -> dict:
    was = codec.training
    codec.eval()
    try:
        p, s, pc = [], [], []
        for x in files:
            y = decode_file(codec, x)
            p.append(pesq_wb(x, y, 16000))
            s.append(snr_db(x, y))
            if chunk_gain:
                pc.append(pesq_wb(x, decode_file(codec, x, "chunk"), 16000))
    finally:
        codec.train(was)
    out = {"pesq": float(np.nanmean(p)), "snr_db": float(np.mean(s))}
    if chunk_gain:
        out["pesq_chunkgain"] = float(np.nanmean(pc))
    return out


def identity_check(files) -> None:
    codec = build_codec(LossWeights())
    vals = []
    for x in files:
        geo = codec.geometry(len(x))
        prep = codec._prepare_channel(x, geo)
        y = codec._synthesize_channel(prep.frames, None, float(prep.gain), geo)
        vals.append((pesq_wb(x, y, 16000), float(np.max(np.abs(x - y)))))
    v = np.array(vals)
    print(json.dumps({"identity_pesq_mean": float(v[:, 0].mean()), "identity_pesq_min": float(v[:, 0].min()),
                      "max_abs_err": float(v[:, 1].max())}))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="/work/corpus16/manifest.jsonl")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--identity", action="store_true", help="only check framing + overlap-add (no network)")
    ap.add_argument("--eval-ckpt", type=Path, help="only evaluate this ae.pt on train / valid / test speech files")
    ap.add_argument("--eval-files", type=int, default=8, help="--eval-ckpt: files per split and source")
    ap.add_argument("--export-init", type=Path, help="with --eval-ckpt: write its weights as module 1 of a cascade "
                    "(safetensors for `neurocodec train ... --init`)")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=32, help="crops per step")
    ap.add_argument("--segment", type=int, default=2048, help="crop length (samples)")
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--lr-min", type=float, default=None, help="cosine decay to this rate (default constant)")
    ap.add_argument("--gain", choices=("segment", "file"), default="segment")
    ap.add_argument("--time", type=float, default=1.0, help="weight of the time-domain MSE")
    ap.add_argument("--mel", type=float, default=1.0, help="weight of the mel loss")
    ap.add_argument("--amp", choices=("bf16", "none"), default="bf16")
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--eval-real", type=int, default=6, help="also evaluate on this many test speech-real files")
    ap.add_argument("--chunk-gain-eval", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    man = Manifest.load(a.data)
    val = load_split(man, "valid")
    if a.identity:
        identity_check(val)
        return 0
    if a.eval_ckpt:
        ck = torch.load(a.eval_ckpt, weights_only=False)
        codec = build_codec(LossWeights())
        codec.coding_modules[0].autoencoder.load_state_dict(ck["ae"])
        if a.export_init:
            from safetensors.torch import save_file

            save_file({f"coding_modules.0.autoencoder.{k}": v.contiguous() for k, v in ck["ae"].items()},
                      str(a.export_init))
            print(f"wrote {a.export_init} (step {ck['step']})")
            return 0
        out = {"ckpt": str(a.eval_ckpt), "step": ck["step"]}
        for split in ("train", "valid", "test"):
            for src in SPEECH:
                files = load_split(man, split, sources=(src,), limit=a.eval_files)
                if files:
                    ev = evaluate(codec, files, False)
                    out[f"{split}/{src}"] = {k: round(v, 3) for k, v in ev.items()}
        print(json.dumps(out))
        return 0
    test_real = load_split(man, "test", sources=("speech-real",), limit=a.eval_real) if a.eval_real else []
    train = load_split(man, "train")
    lengths = np.array([len(x) for x in train], dtype=np.float64)
    file_rms = np.array([max(float(np.sqrt(np.mean(x.astype(np.float64) ** 2))), GAIN_FLOOR) for x in train])
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    codec = build_codec(LossWeights(time=a.time, mel=a.mel))
    codec.train()
    ae = codec.coding_modules[0].autoencoder
    opt = torch.optim.Adam(ae.parameters(), lr=a.lr)
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "args.json").write_text(json.dumps({k: str(v) for k, v in vars(a).items()}, indent=1))
    log = open(a.out / "metrics.jsonl", "a")
    geo = codec.geometry(a.segment)
    o, P, T = codec.config.overlap, geo.padded_length, a.segment
    t0 = time.time()
    acc: dict[str, list[float]] = {}

    def do_eval(step):
        ev = evaluate(codec, val, a.chunk_gain_eval)
        rec = {"step": step, "wall_s": round(time.time() - t0, 1), "lr": opt.param_groups[0]["lr"],
               **{f"train/{k}": float(np.mean(v)) for k, v in acc.items()},
               **{f"val/{k}": v for k, v in ev.items()}}
        if test_real:
            rec.update({f"test_real/{k}": v for k, v in evaluate(codec, test_real, False).items()})
        acc.clear()
        log.write(json.dumps(rec) + "\n")
        log.flush()
        print(json.dumps(rec), flush=True)
        torch.save({"ae": ae.state_dict(), "step": step, "args": vars(a) | {"out": str(a.out)}}, a.out / "ae.pt")

    do_eval(0)
    for step in range(1, a.steps + 1):
        if a.lr_min is not None:
            lr = a.lr_min + 0.5 * (a.lr - a.lr_min) * (1 + math.cos(math.pi * step / a.steps))
            for g in opt.param_groups:
                g["lr"] = lr
        idx = rng.choice(len(train), size=a.batch, p=lengths / lengths.sum())
        crops, gains = [], []
        for i in idx:
            x = train[i]
            s = int(rng.integers(0, max(1, len(x) - T)))
            c = np.zeros(T, np.float32)
            piece = x[s:s + T]
            c[:len(piece)] = piece
            crops.append(c)
            gains.append(file_rms[i])
        xs = torch.from_numpy(np.stack(crops))
        if a.gain == "segment":
            g = xs.pow(2).mean(-1).sqrt().clamp_min(GAIN_FLOOR)
        else:
            g = torch.tensor(gains, dtype=torch.float32)
        xn = xs / g[:, None]
        frames = F.pad(xn, (o, P - o - T))[:, : geo.num_frames * geo.hop + o].unfold(-1, geo.frame_length, geo.hop)
        flat = frames.reshape(-1, geo.frame_length)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.amp == "bf16"):
            rec = ae(flat)[:, 0, :]
        rec = rec.float().reshape(a.batch, geo.num_frames, geo.frame_length)
        y_hat = codec._overlap_add(rec, geo)[:, o:o + T]
        time_mse = F.mse_loss(y_hat, xn)
        mel = codec._mel_loss(y_hat, xn) if a.mel > 0 else torch.zeros(())
        loss = a.time * time_mse + a.mel * mel
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        for k, v in (("loss", loss), ("time_mse", time_mse), ("mel", mel)):
            acc.setdefault(k, []).append(float(v))
        if step % a.eval_every == 0 or step == a.steps:
            do_eval(step)
    return 0


if __name__ == "__main__":
    sys.exit(main())
