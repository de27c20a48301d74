"""Rate trim of a trained byun2023 model (``perceptual-fem``/``perceptual-hpm``): find the
quantizer scale ``g`` (``model.code_scale``; the coder quantizes ``g * z``, the densities are
scaled with it, no retraining) for which real ``.ncdc`` files of the validation split come out
at the nominal rate, then export with it:

    python scripts/perceptual_trim.py RUN_DIR --data corpus16/manifest.jsonl
    neurocodec export RUN_DIR --name perceptual-hpm-16k --fp16 --set model.code_scale=G

The search is a secant method on ``(ln g, kbps)`` (one doubling of ``g`` adds about one bit per
latent value); it prints every trial and, last, ``G``.
"""

from __future__ import annotations

import argparse
import math
import sys


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", help="training run folder (its latest checkpoint)")
    ap.add_argument("--data", required=True)
    ap.add_argument("--split", default="valid")
    ap.add_argument("--seconds", type=float, default=120.0)
    ap.add_argument("--tolerance", type=float, default=0.01)
    ap.add_argument("--trials", type=int, default=6)
    args = ap.parse_args(argv)

    import torch

    from neurocodec.train.checkpoint import latest_checkpoint, load_checkpoint
    from neurocodec.train.export import manifest_signals, measure_file_bitrate
    from neurocodec.train.recipe import build_model, recipe_from_dict

    torch.set_num_threads(1)
    state = load_checkpoint(latest_checkpoint(args.run))
    recipe = recipe_from_dict(state["recipe"])
    model = build_model(recipe)
    model.load_state_dict(state["model"], strict=True)
    model.eval()
    target = float(model.bitrates.default)
    signals = list(manifest_signals(args.data, args.split, recipe.train.sources, model.sample_rate, args.seconds))
    points = []
    x = 0.0
    best = None
    for _ in range(args.trials):
        model.with_code_scale(math.exp(x))
        kbps = measure_file_bitrate(model, signals, target)["kbps"]
        print(f"code_scale {math.exp(x):.4f}: {kbps:.3f} kbps (target {target:g})", flush=True)
        points.append((x, kbps))
        if best is None or abs(kbps - target) < abs(best[1] - target):
            best = (x, kbps)
        if abs(kbps / target - 1) <= args.tolerance:
            break
        slope = 8.5 / math.log(2) * model.frames_per_second * model.config.latent_length / 8533.0
        if len(points) >= 2 and points[-1][0] != points[-2][0]:
            s = (points[-1][1] - points[-2][1]) / (points[-1][0] - points[-2][0])
            if s > 0:
                slope = s
        x = max(min(x + (target - kbps) / slope, math.log(8.0)), math.log(1 / 8.0))
    print(f"G={math.exp(best[0])!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
