"""``neurocodec train`` and ``neurocodec export`` (argparse hooks wired into ``neurocodec.cli``).

    neurocodec train RECIPE --data MANIFEST --out RUN_DIR [--bitrate KBPS] [--steps N]
                     [--device cpu|cuda] [--resume] [--init PATH] [--set KEY=VALUE ...]
    torchrun --nproc_per_node 2 -m neurocodec train RECIPE ...     # DDP, one process per GPU/CPU slot
    neurocodec export RUN_DIR --name NAME [--dest DIR] [--fp16] [--data MANIFEST] [--fit-seconds S]
                      [--trim-rate [--trim-statistic total|files] [--trim-module N|auto] [--trim-split SPLIT]] [--file-rate-control]

Handlers return an exit status; bad arguments raise ``UserError`` subclasses.
"""

from __future__ import annotations

import argparse
import os
import signal
import shlex
import sys
from pathlib import Path
from typing import Any

from ..errors import UserError
from .errors import RecipeError


def segment_samples_for(recipe, split: str) -> int:
    """Segment length of ``split``: ``train.val_segment_samples`` for the validation split when set."""
    t = recipe.train
    return t.val_segment_samples if split == t.val_split and t.val_segment_samples else t.segment_samples


def default_build_data(manifest: Path, split: str, recipe, sample_rate: int):
    """The corpus layer's fixed-length segments: ``SegmentDataset(manifest, split, segment_samples,
    sample_rate, seed, sources)`` (``train.sources``: only those manifest sources), or the same
    crops of an audio pack (``--data X.ncpack``, :class:`neurocodec.data.packed.PackedSegments`)."""
    from ..data.packed import PackedSegments, is_pack

    if is_pack(manifest):
        return PackedSegments(manifest, split, segment_samples_for(recipe, split), sample_rate, recipe.train.seed,
                              sources=list(recipe.train.sources) or None)
    try:
        from ..data.dataset import SegmentDataset
    except ImportError:
        raise RecipeError("the corpus layer (neurocodec.data.dataset.SegmentDataset) is not available; "
                          "register the recipe with its own build_data") from None
    return SegmentDataset(manifest, split, segment_samples_for(recipe, split), sample_rate, recipe.train.seed,
                          sources=list(recipe.train.sources) or None)


def _quality_metrics(enabled: bool) -> dict[str, Any]:
    """``{"pesq_wb": fn}`` for validation when the eval layer and the ``pesq`` package are present."""
    if not enabled:
        return {}
    import importlib
    import importlib.util

    fn = None
    for module in ("..eval.metrics", "..eval.metrics_ext"):
        try:
            fn = getattr(importlib.import_module(module, __package__), "pesq_wb", None)
        except ImportError:
            fn = None
        if fn is not None:
            break
    if fn is None or importlib.util.find_spec("pesq") is None:
        print("neurocodec: note: PESQ unavailable (pip install pesq); validating without it", file=sys.stderr)
        return {}
    return {"pesq_wb": fn}


def _command(args) -> str:
    """The training command as it would be typed (recorded in checkpoints and model cards)."""
    parts = ["neurocodec", "train", args.recipe, "--data", args.data, "--out", args.out]
    if args.bitrate is not None:
        parts += ["--bitrate", f"{args.bitrate:g}"]
    if args.steps is not None:
        parts += ["--steps", str(args.steps)]
    parts += ["--device", args.device]
    if args.resume:
        parts.append("--resume")
    if args.init:
        parts += ["--init", args.init]
    for s in args.set or []:
        parts += ["--set", s]
    cmd = shlex.join(parts)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        cmd = f"torchrun (WORLD_SIZE={world}) -m {cmd}"
    return cmd


def build_run(args):
    """Resolve ``args`` into (recipe, train dataset, validation dataset or None); raises UserError."""
    from .checkpoint import latest_checkpoint, load_checkpoint
    from .recipe import apply_overrides, get_recipe, load_recipe_file, make_recipe, recipe_from_dict
    from .trainer import recipe_sample_rate

    name = load_recipe_file(args.recipe)[0] if args.recipe.endswith((".yaml", ".yml")) else args.recipe
    entry = get_recipe(name)
    manifest = Path(args.data)
    if not manifest.is_file():
        raise RecipeError(f"data manifest not found: {manifest}")
    overrides: dict[str, Any] = {}
    for item in args.set or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise RecipeError(f"bad --set '{item}': expected KEY=VALUE, e.g. train.lr=2e-5")
        overrides[key.strip()] = value.strip()
    if args.steps is not None:
        overrides["train.steps"] = args.steps
    if args.bitrate is not None:
        model_cls = entry.resolve_config_cls()
        if entry.config_for_bitrate is None and "bitrate_kbps" not in getattr(model_cls, "__dataclass_fields__", {}):
            raise RecipeError(f"recipe '{name}' has no bitrate setting (model.bitrate_kbps)")

    ckpt = latest_checkpoint(args.out) if args.resume else None
    if ckpt is not None:  # the stored recipe, plus only what was asked for now
        stored = load_checkpoint(ckpt)["recipe"]
        if stored.get("name") != name:
            raise RecipeError(f"{args.out} trains recipe '{stored.get('name')}', not '{name}'")
        recipe = apply_overrides(recipe_from_dict(stored), overrides)
    else:
        recipe = make_recipe(args.recipe, overrides, bitrate_kbps=args.bitrate)
    sr = recipe_sample_rate(recipe)
    build = entry.resolve_data_builder() or default_build_data
    train_data = build(manifest, recipe.train.train_split, recipe, sr)
    try:
        val_data = build(manifest, recipe.train.val_split, recipe, sr)
    except UserError as e:
        print(f"neurocodec: warning: no validation data ({e}); training without validation", file=sys.stderr)
        val_data = None
    if val_data is not None and len(val_data) == 0:
        val_data = None
    return recipe, train_data, val_data


def cmd_train(args) -> int:
    from .trainer import Trainer

    recipe, train_data, val_data = build_run(args)
    result = Trainer(recipe, args.out, train_data, val_data, device=args.device, resume=args.resume,
                     quality_metrics=_quality_metrics(not args.no_quality), command=_command(args),
                     manifest=args.data, progress=not args.quiet, init=args.init).fit()
    if int(os.environ.get("RANK", "0")) == 0:
        val = ", ".join(f"{k}={v:.4g}" for k, v in sorted(result.val_metrics.items()))
        print(f"trained {recipe.name} to step {result.step}/{result.total_steps} "
              f"({result.steps_per_second:.2f} steps/s, {result.wall_time_s:.1f} s in total)"
              + (f"; {val}" if val else "") + f"; checkpoint {result.checkpoint}", file=sys.stderr)
    if result.signal:  # stopped cleanly by Ctrl-C / kill: the shell's status for that signal
        if int(os.environ.get("RANK", "0")) == 0:
            print(f"{result.signal}: stopped; continue with --resume", file=sys.stderr)
        return 128 + int(signal.Signals[result.signal])
    return 0


def cmd_export(args) -> int:
    from .export import export_run

    res = export_run(args.run_dir, args.name, args.dest, fp16=args.fp16, checkpoint=args.checkpoint,
                     allow_incomplete=args.allow_incomplete, force=args.force, data=args.data,
                     fit_seconds=args.fit_seconds, progress=lambda m: print(f"neurocodec: {m}", file=sys.stderr),
                     overrides=[*args.set, *(["model.file_rate_control=true"] if args.file_rate_control else [])],
                     trim_rate=args.trim_rate, trim_seconds=args.trim_seconds,
                     trim_tolerance=args.trim_tolerance, trim_statistic=args.trim_statistic,
                     trim_module=args.trim_module, trim_split=args.trim_split,
                     trim_with_rate_control=args.trim_with_rate_control)
    extra = f", max fp16 error {res.max_abs_error:.2g}" if res.dtype == "float16" else ""
    if res.rate_trim:
        r = res.rate_trim
        how = "mean of files" if r.get("statistic") == "files" else "total"
        extra += (f"; rate trim: code_scale {r['code_scale']:.4f}, {r['kbps']:.2f} kbps ({how}) on "
                  f"{r['calibration_seconds']:.0f} s of "
                  + ("training audio" if r.get("calibration_split", "train") == "train" else f"'{r['calibration_split']}' audio"))
    if res.bitrate:
        b = res.bitrate
        extra += (f"; files of the {b['split']} split ({b['files']}, {b['seconds']:.0f} s): {b['kbps']:.2f} kbps "
                  f"total, {b['mean_file_kbps']:.2f} mean of files, for {b['nominal_kbps']:g} nominal "
                  f"({100 * (b['kbps'] / b['nominal_kbps'] - 1):+.1f}%, "
                  f"{100 * (b['mean_file_kbps'] / b['nominal_kbps'] - 1):+.1f}%)")
    print(f"exported step {res.step} of {args.run_dir} to {res.directory} ({res.num_parameters:,} parameters, "
          f"{res.dtype}{extra})", file=sys.stderr)
    return 0


def add_train_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``train`` to an ``add_subparsers()`` object; the handler is ``args.func``."""
    from .recipe import recipe_names

    known = ", ".join(recipe_names()) or "none registered yet"
    p = subparsers.add_parser("train", help="train a learned codec from a recipe",
                              description=f"Train a learned codec. Recipes: {known}. Under torchrun "
                                          "every process joins one DDP run.")
    p.add_argument("recipe", help="recipe name, or a YAML file {recipe: NAME, model: {...}, train: {...}}")
    p.add_argument("--data", required=True, metavar="MANIFEST", help="corpus manifest (JSONL/CSV)")
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="run folder (checkpoints, tb, metrics.jsonl)")
    p.add_argument("--bitrate", type=float, default=None, metavar="KBPS", help="target bitrate (model.bitrate_kbps)")
    p.add_argument("--steps", type=int, default=None, metavar="N", help="total training steps (train.steps)")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--resume", action="store_true", help="continue the run in RUN_DIR from its latest checkpoint")
    p.add_argument("--init", default=None, metavar="PATH",
                   help="start a new run from these weights (run folder, .pt checkpoint or exported "
                        "model.safetensors); tensors whose name and shape match are copied")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a recipe field, e.g. train.lr=2e-5 or model.num_modules=2 (repeatable)")
    p.add_argument("--no-quality", action="store_true", help="skip PESQ on validation reconstructions")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)
    return p


def add_export_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``export`` to an ``add_subparsers()`` object; the handler is ``args.func``."""
    p = subparsers.add_parser("export", help="turn a training run into shipped weights + model card")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--name", required=True, help="weights name (folder under --dest)")
    p.add_argument("--dest", default=None, help="destination folder (default: the package's assets/weights)")
    p.add_argument("--fp16", action="store_true", help="store floating-point weights as float16")
    p.add_argument("--checkpoint", default=None, help="export this checkpoint instead of the run's latest ('best': the train.keep_best copy)")
    p.add_argument("--allow-incomplete", action="store_true", help="export a run that has not reached its steps")
    p.add_argument("--force", action="store_true", help="replace existing weights of the same name")
    p.add_argument("--data", default=None, metavar="MANIFEST",
                   help="corpus manifest whose training audio fits the entropy coder of models that have one "
                        "(default: the manifest the run trained on)")
    p.add_argument("--fit-seconds", type=float, default=900.0, metavar="S",
                   help="at most this much training audio for the entropy coder (default 900)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="change a setting that leaves the weights alone, e.g. model.entropy_coder=best")
    p.add_argument("--trim-rate", action="store_true",
                   help="set the quantizer step (model.code_scale) so that real files of held-out training "
                        "audio come out at the nominal bitrate (CMRL/CQ)")
    p.add_argument("--trim-seconds", type=float, default=120.0, metavar="S",
                   help="training audio after the --fit-seconds that the rate trim measures (default 120)")
    p.add_argument("--trim-tolerance", type=float, default=0.005, metavar="F",
                   help="relative rate error at which the trim stops searching (default 0.005)")
    p.add_argument("--trim-statistic", choices=("total", "files"), default="total",
                   help="rate the trim lands on the nominal one: total bytes / total seconds (total, default) "
                        "or the mean of the per-file bitrates, as 'neurocodec eval' reports them (files)")
    p.add_argument("--trim-split", default=None, metavar="SPLIT",
                   help="calibrate the rate trim on this split instead of held-out training audio, e.g. valid "
                        "(speakers the training never saw; the export's valid-split measurement is then not independent)")
    p.add_argument("--trim-with-rate-control", action="store_true",
                   help="measure the trim's files with the per-file rate control on (for models whose control "
                        "cannot coarsen a file far enough, so that it only lifts the cheap ones)")
    p.add_argument("--trim-module", default="auto", metavar="N|auto",
                   help="module whose quantizer step the trim and the file rate control turn (CMRL/CQ): a module "
                        "number, or auto (default): the module whose symbols carry the most bits on the fit audio")
    p.add_argument("--file-rate-control", action="store_true",
                   help="the exported codec picks its quantizer step per chunk so that every file lands on the "
                        "nominal bitrate, container included (CMRL/CQ; same as --set model.file_rate_control=true)")
    p.set_defaults(func=cmd_export)
    return p


def add_cli(subparsers) -> None:
    """Both sub-commands (what ``neurocodec.cli._extensions`` calls)."""
    add_train_parser(subparsers)
    add_export_parser(subparsers)
