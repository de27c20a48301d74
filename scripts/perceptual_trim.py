"""Rate trim of a trained byun2023 model (``perceptual-fem``/``perceptual-hpm``): find the
quantizer scale ``g`` (``model.code_scale``; the coder quantizes ``g * z``, the densities are
scaled with it, no retraining) for which real ``.ncdc`` files of the validation split come out
at the nominal rate, then export with it:

    python scripts/perceptual_trim.py RUN_DIR --data corpus16/manifest.jsonl
    neurocodec export RUN_DIR --name perceptual-hpm-16k --fp16 --set model.code_scale=G

(``--checkpoint PATH|best`` trims another checkpoint of the run; give the same to the export.)

The search works on ``(ln g, kbps)`` (one doubling of ``g`` adds about one bit per latent value):
secant steps of at most one doubling or halving of ``g`` until the target is bracketed, then
regula falsi inside the bracket (bisection where the rate is flat, e.g. a latent that codes to
almost nothing below some ``g``), ``1/16 <= g <= 16``; it prints every trial and, last, ``G``
(the trial nearest the target).  The per-file rate control (:mod:`neurocodec.codecs.perceptual_rate`)
is off while it measures: the trim sets the scale the files land on by themselves (the grid's
index 0), the rate control then moves single files around it.
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
    ap.add_argument("--sources", default=None, help="comma-separated manifest sources (default: the recipe's)")
    ap.add_argument("--interleave", action="store_true", help="take the files of the sources in turn")
    ap.add_argument("--seconds", type=float, default=120.0)
    ap.add_argument("--tolerance", type=float, default=0.01)
    ap.add_argument("--trials", type=int, default=6)
    ap.add_argument("--checkpoint", default=None,
                    help="trim this checkpoint instead of the run's latest ('best': checkpoints/best.pt)")
    args = ap.parse_args(argv)

    import torch

    from neurocodec.train.checkpoint import load_checkpoint, resolve_checkpoint
    from neurocodec.train.export import manifest_signals, measure_file_bitrate
    from neurocodec.train.recipe import build_model, recipe_from_dict

    torch.set_num_threads(1)
    state = load_checkpoint(resolve_checkpoint(args.run, args.checkpoint))
    recipe = recipe_from_dict(state["recipe"])
    model = build_model(recipe)
    model.load_state_dict(state["model"], strict=True)
    model.eval()
    model.set_file_rate_control(False)
    target = float(model.bitrates.default)
    sources = args.sources.split(",") if args.sources else recipe.train.sources
    signals = list(manifest_signals(args.data, args.split, sources, model.sample_rate, args.seconds,
                                    interleave=args.interleave))
    x = 0.0
    best = None
    below = above = None  # the bracket: (ln g, kbps) under and over the target
    last = None
    for _ in range(args.trials):
        model.with_code_scale(math.exp(x))
        kbps = measure_file_bitrate(model, signals, target)["kbps"]
        print(f"code_scale {math.exp(x):.4f}: {kbps:.3f} kbps (target {target:g})", flush=True)
        if best is None or abs(kbps - target) < abs(best[1] - target):
            best = (x, kbps)
        if abs(kbps / target - 1) <= args.tolerance:
            break
        if kbps < target:
            below = (x, kbps) if below is None or x > below[0] else below
        else:
            above = (x, kbps) if above is None or x < above[0] else above
        if below is not None and above is not None:
            # regula falsi inside the bracket, bisection when it would land near an end (a flat
            # stretch: e.g. a latent that codes to nothing until g is large)
            (x0, k0), (x1, k1) = below, above
            x_new = x0 + (target - k0) * (x1 - x0) / (k1 - k0)
            if not (x0 + 0.1 * (x1 - x0) <= x_new <= x1 - 0.1 * (x1 - x0)):
                x_new = 0.5 * (x0 + x1)
        else:
            slope = 8.5 / math.log(2) * model.frames_per_second * model.config.latent_length / 8533.0
            if last is not None and x != last[0]:
                # the measured slope (a flat stretch gives the full step of one doubling)
                slope = max((kbps - last[1]) / (x - last[0]), 0.0) or 1e-9
            # at most one doubling (or halving) of g per trial until the target is bracketed
            x_new = x + max(min((target - kbps) / slope, math.log(2.0)), -math.log(2.0))
        last = (x, kbps)
        x = max(min(x_new, math.log(16.0)), math.log(1 / 16.0))
    print(f"G={math.exp(best[0])!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
