#!/usr/bin/env python3
"""PESQ-WB and ViSQOL (speech mode) of an EnCodec training checkpoint on the manifest's valid split:
the raw weights and the weight EMA side by side (what ``neurocodec export`` would ship), or an
exported ``model.safetensors``.

    python scripts/encodec_valid_quality.py RUN/checkpoints/step_00005000.pt --data MANIFEST --kbps 4
    python scripts/encodec_valid_quality.py src/neurocodec/assets/weights/encodec-16k/model.safetensors --data MANIFEST

Audio goes whole-file through the network (``EncodecNet.encode``/``decode``: the same codes as the
streaming codec up to float rounding), speech sources only, the first ``--seconds`` of the split;
prints the mean and the number of files.  ``--kbps 0`` decodes the encoder's latents unquantized
(the ceiling that more codebooks can approach).  One thread.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch


def _score(net, signals, n_q, sr):
    from neurocodec.eval.metrics_ext import pesq_wb, visqol_speech
    from neurocodec.eval.snr import si_snr

    pesq, visqol, sisnr = [], [], []
    with torch.no_grad():
        for x in signals:
            xt = torch.from_numpy(x)[None]
            if n_q:
                y = net.decode(net.encode(xt, n_q))
            else:
                y = net.decoder(net.encoder(xt))
            y = y[0, :, :x.shape[1]].numpy()
            pesq.append(pesq_wb(x[0], y[0], sr))
            visqol.append(visqol_speech(x[0], y[0], sr))
            sisnr.append(si_snr(x[0], y[0], sr))
    return float(np.nanmean(pesq)), float(np.nanmean(visqol)), float(np.nanmean(sisnr))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("path", help="a training checkpoint (.pt) or an exported model.safetensors")
    ap.add_argument("--data", required=True)
    ap.add_argument("--kbps", type=float, nargs="+", default=[4.0])
    ap.add_argument("--seconds", type=float, default=120.0, help="audio of the valid split to score")
    args = ap.parse_args()
    torch.set_num_threads(1)
    from neurocodec.train.export import manifest_signals

    if args.path.endswith(".safetensors"):
        from neurocodec.codecs.encodec import EncodecCodec

        m = EncodecCodec.from_pretrained(args.path).float()
        variants = {"exported": m.net.state_dict()}
    else:
        from neurocodec.train.checkpoint import load_checkpoint
        from neurocodec.train.recipe import build_model, recipe_from_dict

        st = load_checkpoint(args.path)
        m = build_model(recipe_from_dict(st["recipe"]))
        m.load_state_dict(st["model"])
        raw = {k: v.clone() for k, v in m.net.state_dict().items()}
        variants = {"raw": raw}
        ema = m._train_parts.get("ema")
        if ema is not None:
            variants["ema"] = {**raw, **{k: v for k, v in ema.items() if k in raw}}
        print(f"checkpoint step {st.get('step')}")
    m.eval()
    sr = m.sample_rate
    signals = list(manifest_signals(args.data, "valid", ("speech-real", "speech-tts"), sr, args.seconds))
    print(f"{len(signals)} valid speech files, {sum(s.shape[-1] for s in signals) / sr:.0f} s at {sr} Hz")
    for name, state in variants.items():
        m.net.load_state_dict(state)
        for kbps in args.kbps:
            p, v, q = _score(m.net, signals, m.n_q_for(kbps) if kbps else 0, sr)
            rate = f"{kbps:5g} kbps" if kbps else "unquantized"
            print(f"{name:<9} {rate:>11}  PESQ-WB {p:.3f}  ViSQOL-speech {v:.3f}  SI-SNR {q:.2f} dB", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
