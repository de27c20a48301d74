#!/usr/bin/env python3
"""Extend an exported EnCodec with more RVQ codebooks (higher bandwidths), keeping the rest frozen.

    python scripts/extend_encodec_codebooks.py src/neurocodec/assets/weights/encodec-24k \\
        --data /work/corpus16/manifest.jsonl --n-q 32 --bandwidth 24 --out DIR

The network, the existing codebooks, their static tables and the code LM are copied bit for bit
(so streams of the old bandwidths are unchanged, see ``EncodecConfig.nested_n_q``); the new
codebooks are trained by :func:`neurocodec.train.encodec_extend.extend_codebooks` (k-means, then
the RVQ's EMA updates, on the residual of the frozen encoder's latents) on the manifest's
training split, resampled to the model's rate with soxr as the training data path does.  Writes
``model.safetensors`` (fp16 for the new codebooks, like the rest), ``config.json``,
``extension.json`` (what was done, with per-codebook statistics) to ``--out``; copies the model
card and appends a section to it.  One thread.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("weights", help="exported weights folder (with model.safetensors)")
    ap.add_argument("--data", required=True, help="corpus manifest (its training split is used)")
    ap.add_argument("--out", required=True, help="output weights folder (may be the input folder)")
    ap.add_argument("--n-q", type=int, default=32, help="codebooks of the extended model")
    ap.add_argument("--bandwidth", type=float, nargs="+", default=[24.0], help="bandwidths (kbps) to add")
    ap.add_argument("--split", default="train")
    ap.add_argument("--seconds", type=float, default=3600.0, help="audio of the split to use (at most)")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--batch", type=int, default=8192, help="latents per EMA update")
    ap.add_argument("--kmeans-rows", type=int, default=32768)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    from safetensors.torch import save

    from neurocodec.audio import atomic_write_bytes
    from neurocodec.codecs.encodec import EncodecCodec
    from neurocodec.codecs.weights_file import INT8_ROWS_KEY, load_safetensors
    from neurocodec.train.encodec_extend import encoder_latents, extend_codebooks
    from neurocodec.train.export import manifest_signals

    src, out = Path(args.weights), Path(args.out)
    tensors, meta = load_safetensors(src / "model.safetensors")
    meta.pop(INT8_ROWS_KEY, None)  # written back as floats
    codec = EncodecCodec.from_pretrained(src / "model.safetensors")
    old = codec.config
    t0 = time.time()
    z, seconds = encoder_latents(codec, manifest_signals(args.data, args.split, (), codec.sample_rate,
                                                         args.seconds, interleave=True))
    print(f"{z.shape[0]} latents ({seconds:.0f} s of '{args.split}') in {time.time() - t0:.0f} s", flush=True)

    def say(s):
        print(f"codebook {s.codebook + 1:2d}: residual MSE {s.residual_mse_before:.5f} -> {s.residual_mse_after:.5f}, "
              f"{s.codes_used} codes used, {s.dead_codes_replaced} dead codes replaced, {s.seconds:.0f} s", flush=True)

    ext = extend_codebooks(codec, tensors, z, args.n_q, args.bandwidth, epochs=args.epochs, batch=args.batch,
                           kmeans_rows=args.kmeans_rows, seed=args.seed, progress=say)
    meta["config"] = json.dumps(asdict(ext.config), sort_keys=True)
    out.mkdir(parents=True, exist_ok=True)
    if out.resolve() != src.resolve():
        for name in ("MODEL_CARD.md", "training.json", "lm_training.json"):
            if (src / name).is_file():
                shutil.copy(src / name, out / name)
    state = dict(ext.state)
    # the tables fit in int32 (totals of 2^16) and load into the model's int64 buffer, whose
    # values (and so the weights digest) are unchanged: half the bytes on disk
    state["static_cdf"] = state["static_cdf"].to(torch.int32)
    atomic_write_bytes(out / "model.safetensors", save(state, metadata=meta))
    (out / "config.json").write_text(json.dumps(asdict(ext.config), indent=2) + "\n")
    check = EncodecCodec.from_pretrained(out / "model.safetensors")  # loads; the old codebooks are unchanged
    for k in range(old.n_q):
        assert torch.equal(check.net.quantizer.codebooks[k].embed, codec.net.quantizer.codebooks[k].embed)
    wall = time.time() - t0
    report = {"command": "python scripts/extend_encodec_codebooks.py " + " ".join(sys.argv[1:]),
              "source_n_q": old.n_q, "n_q": args.n_q, "bandwidths": list(ext.config.bandwidths),
              "split": args.split, "seconds": round(seconds, 1), "latents": ext.frames, "epochs": args.epochs,
              "batch": args.batch, "kmeans_rows": args.kmeans_rows, "seed": args.seed, "threads": 1,
              "wall_seconds": round(wall, 1), "latent_mse": ext.latent_mse,
              "codebooks": [asdict(s) for s in ext.codebooks]}
    (out / "extension.json").write_text(json.dumps(report, indent=2) + "\n")
    card = out / "MODEL_CARD.md"
    if card.is_file():
        rows = "\n".join(f"| {s.codebook + 1} | {s.residual_mse_before:.5f} | {s.residual_mse_after:.5f} | "
                         f"{s.codes_used} | {s.dead_codes_replaced} | {s.entropy_bits:.3f} |" for s in ext.codebooks)
        bws = ", ".join(f"{b:g}" for b in ext.config.bandwidths)
        card.write_text(card.read_text().rstrip("\n") + f"""

## Codebooks {old.n_q + 1}-{args.n_q} (added by scripts/extend_encodec_codebooks.py)

The network, codebooks 1-{old.n_q}, their static tables and the LM are unchanged (bit for bit), so
streams of up to {old.n_q} codebooks are too (same payload, same config hash). The model gained
{args.n_q - old.n_q} codebooks (bandwidths {bws} kbps), each initialised by k-means
({args.kmeans_rows} latents) on the residual that the previous codebooks leave on the frozen
encoder's latents of {seconds:.0f} s of the '{args.split}' split, then refined by {args.epochs}
epochs of the RVQ's EMA updates (decay 0.99, batches of {args.batch} latents, dead codes replaced
except in the last epoch); {wall:.0f} s on one CPU thread. The decoder was not fine-tuned. The LM
still models codebooks 1-{old.lm_n_q or old.n_q}; the others are coded with their static tables
(entropy below, bits per code, on the training latents). Mean square of the latents: {ext.latent_mse:.5f}.

```
{report['command']}
```

| codebook | residual MSE before | after | codes used | dead codes replaced | entropy (bits) |
|---|---|---|---|---|---|
{rows}
""")
    print(f"wrote {out} in {wall:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
