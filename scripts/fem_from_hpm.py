"""Warm start of a ``perceptual-fem`` point from a trained ``perceptual-hpm`` model (byun2023
§3.2: the two density models share the autoencoder of §3.1).

Copies the HPM model's encoder and decoder into a FEM model, then fits the factorized density of
Ballé et al. 2018 to the latents of that (frozen) autoencoder on training speech: Adam on the
density's parameters alone, minimising the estimated rate of the noisy latents (the training
path's additive uniform noise).  A fresh density started at several times the target rate,
and at the training learning rate (2e-4) it moves too slowly for the rate steering to find
the target before it has wrecked the code; fitted, the run starts at the rate
the HPM autoencoder's latents cost without side information, which the fine-tune then steers
to the target.  Writes a training checkpoint that ``neurocodec train perceptual-fem --init``
reads:

    python scripts/fem_from_hpm.py src/neurocodec/assets/weights/perceptual-hpm-16k \\
        --data corpus16/manifest.jsonl --out runs/fem24-init.pt
    neurocodec train perceptual-fem --bitrate 24 --init runs/fem24-init.pt ...

It prints the rate of the rounded latents under the fitted density (kbps): choose the HPM point
whose latents cost a little more than the FEM target.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("hpm", help="exported perceptual-hpm weights (folder with model.safetensors)")
    ap.add_argument("--data", required=True, help="corpus manifest (its train split's speech)")
    ap.add_argument("--out", required=True, help="training checkpoint to write (.pt)")
    ap.add_argument("--segments", type=int, default=4096, help="training segments of 1024 samples")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    import numpy as np
    import torch

    from neurocodec.codecs.perceptual import PerceptualFemCodec, PerceptualHpmCodec
    from neurocodec.data.dataset import SegmentDataset
    from neurocodec.errors import NeurocodecError
    from neurocodec.train.checkpoint import FORMAT, VERSION
    from neurocodec.train.recipe import SPEECH_SOURCES

    torch.manual_seed(args.seed)
    try:
        hpm = PerceptualHpmCodec.from_pretrained(f"{args.hpm}/model.safetensors")
    except NeurocodecError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    cfg = hpm.config
    fem = PerceptualFemCodec(dataclasses.replace(cfg, density="fem", code_scale=1.0).validate())
    own = fem.state_dict()
    src = hpm.state_dict()
    copied = [k for k in own if k.split(".")[0] in ("encoder", "decoder")]
    fem.load_state_dict({**own, **{k: src[k] for k in copied}})
    print(f"copied {len(copied)} autoencoder tensors from {args.hpm}")

    ds = SegmentDataset(args.data, "train", 1024, cfg.sample_rate, args.seed, sources=list(SPEECH_SOURCES))
    pick = np.random.default_rng(args.seed).permutation(len(ds))[:args.segments]
    frames = torch.cat([torch.as_tensor(ds[int(i)]).reshape(-1, cfg.frame) for i in pick])
    with torch.no_grad():
        z = torch.cat([fem.encode_frames(frames[a:a + 1024]) for a in range(0, len(frames), 1024)])
    per_kbps = cfg.sample_rate / 1000.0 / cfg.hop  # bits per frame -> kbps

    dm = fem.density_model
    opt = torch.optim.Adam(dm.parameters(), lr=args.lr)

    def rate(latents: torch.Tensor) -> torch.Tensor:
        return -torch.log2(dm.likelihood(latents, 0.5)).sum(dim=(1, 2)).mean() * per_kbps

    t0 = time.time()
    for step in range(args.steps + 1):
        batch = z[torch.randint(0, len(z), (512,))]
        loss = rate(batch + torch.empty_like(batch).uniform_(-0.5, 0.5))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 100 == 0 or step == args.steps:
            with torch.no_grad():
                hard = float(rate(torch.round(z)))
            print(f"step {step}: noisy {float(loss):.2f} kbps, rounded {hard:.2f} kbps ({time.time() - t0:.0f} s)",
                  flush=True)
    torch.save({"format": FORMAT, "version": VERSION, "model": fem.state_dict(),
                "source": {"hpm": str(args.hpm), "density_steps": args.steps, "rounded_kbps": hard}}, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
