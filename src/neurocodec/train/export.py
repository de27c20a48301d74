"""Turn a run's final checkpoint into shipped weights, and read them back.

``export_run`` writes ``DEST/NAME/`` with

* ``model.safetensors`` - the weights (float32, or float32 tensors as float16 with ``fp16=True``),
  written by the model's own ``save_pretrained(path)`` when it has one (so the codec's
  ``from_pretrained`` reads it), else the ``state_dict`` with metadata ``format=neurocodec-weights``;
* ``config.json`` - the model config dataclass as a flat JSON object (``dataclasses.asdict``), so a
  codec's ``from_pretrained`` can do ``Config(**json.load(...))`` without importing ``train``;
* ``training.json`` - the full recipe, step counts, run metadata and final metrics;
* ``MODEL_CARD.md`` - the same for people (see :mod:`.model_card`).

The folder is assembled under a temporary name and renamed into place.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch

from ..errors import WeightsError
from .checkpoint import BEST_NAME, latest_checkpoint, load_checkpoint, resolve_checkpoint
from .config import to_plain
from .errors import RecipeError
from .model_card import render_card
from .rate_trim import measure_file_bitrate, trim_code_scale
from .recipe import apply_overrides, build_model, recipe_from_dict, recipe_to_dict

FORMAT = "neurocodec-weights"
WEIGHTS_FILE, CONFIG_FILE, TRAINING_FILE, CARD_FILE = "model.safetensors", "config.json", "training.json", "MODEL_CARD.md"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def default_weights_dir() -> Path:
    """``neurocodec/assets/weights`` inside the installed package (the repository when editable)."""
    return Path(__file__).resolve().parents[1] / "assets" / "weights"


@dataclass
class ExportResult:
    """Where ``export_run`` wrote the weights and what it stored."""

    directory: Path
    files: list[Path]
    step: int
    total_steps: int
    dtype: str
    num_parameters: int
    max_abs_error: float = 0.0  # largest |fp16 - fp32| over all weights (0 for float32)
    bitrate: dict[str, Any] | None = None  # measured file bitrate on the validation split (codecs)
    rate_trim: dict[str, Any] | None = None  # RateTrim.to_dict() when --trim-rate ran


@dataclass
class ExportedWeights:
    """Weights read by :func:`load_exported`: model config (plain dict), tensors, card text and
    training record."""

    config: dict[str, Any]
    state_dict: dict[str, torch.Tensor]
    card: str
    training: dict[str, Any] = field(default_factory=dict)
    dtype: str = "float32"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def manifest_records(manifest: str | os.PathLike, split: str, sources, *, interleave: bool = False):
    """``(root, records)`` of ``split`` (and ``sources``, all when empty) of a corpus manifest,
    in manifest order, or with ``interleave`` taking one file of each source in turn (so that
    the first minutes mix every source instead of being the first source's)."""
    from ..data.manifest import Manifest

    m = Manifest.load(manifest).filter(split=split, source=list(sources) or None)
    if not m.records:
        raise RecipeError(f"{manifest} has no audio in split '{split}'"
                          + (f" from source(s) {', '.join(sources)}" if sources else ""))
    records = list(m.records)
    if interleave:
        groups: dict[str, list] = {}
        for r in records:
            groups.setdefault(r.source, []).append(r)
        queues = list(groups.values())
        records = [q[i] for i in range(max(len(q) for q in queues)) for q in queues if i < len(q)]
    return m.root, records


def manifest_signals(manifest: str | os.PathLike, split: str, sources, sample_rate: int,
                     max_seconds: float, *, interleave: bool = False,
                     skip_seconds: float = 0.0) -> Iterator[np.ndarray]:
    """Whole files of ``split`` (see :func:`manifest_records`) as mono float32 ``(1, T)`` at
    ``sample_rate``, after skipping files worth ``skip_seconds`` (manifest durations), until
    ``max_seconds``."""
    from ..audio import read_audio, resample

    root, records = manifest_records(manifest, split, sources, interleave=interleave)
    total = skipped = 0.0
    for r in records:
        if skipped < skip_seconds:
            skipped += r.duration
            continue
        if total >= max_seconds:
            break
        x, sr = read_audio(root / r.path)
        y = resample(x.mean(axis=0, keepdims=True), sr, sample_rate)
        total += y.shape[1] / sample_rate
        yield y


def export_run(run_dir: str | os.PathLike, name: str, dest: str | os.PathLike | None = None, *,
               fp16: bool = False, checkpoint: str | os.PathLike | None = None,
               allow_incomplete: bool = False, force: bool = False,
               data: str | os.PathLike | None = None, fit_seconds: float = 900.0,
               progress: Callable[[str], None] | None = None, overrides: Sequence[str] = (),
               trim_rate: bool = False, trim_seconds: float = 120.0, trim_tolerance: float = 0.005,
               trim_statistic: str = "total", trim_module: str = "auto",
               trim_split: str | None = None, trim_with_rate_control: bool = False) -> ExportResult:
    """Export the latest (or the given) checkpoint of ``run_dir`` as ``dest/name`` (see module doc).

    The model is rebuilt from the checkpoint's recipe and its weights loaded strictly, so an
    export that succeeds is known to match its config.  A model with an entropy coder fitted
    after training (``fit_entropy_coder(signals)``, e.g. the CMRL/CQ pair-Huffman tables) gets
    it fitted on up to ``fit_seconds`` of the training split of ``data`` (default: the manifest
    the run trained on, with the recipe's ``train.sources``, one file of each source in turn);
    a codec model then also has the size of its real files measured on the validation split
    (``ExportResult.bitrate``).  ``trim_rate`` first sets the quantizer step (``code_scale``,
    :func:`~neurocodec.train.rate_trim.trim_code_scale`) so that real files of the next
    ``trim_seconds`` of training audio come out at the nominal bitrate (within ``trim_tolerance``;
    ``trim_statistic`` "total": total bytes over total seconds, "files": the mean of the
    per-file bitrates, as ``neurocodec eval`` reports them); it is recorded as the override
    ``model.code_scale=G``.  ``trim_split`` calibrates on the first ``trim_seconds`` of another
    split instead (e.g. "valid": speakers the training never saw; the export's own measurement
    of the validation split then is no longer an independent check).  ``trim_with_rate_control``
    measures the trim's files with the per-file rate control on (see
    :func:`~neurocodec.train.rate_trim.trim_code_scale`).  ``trim_module`` is the module whose step the trim (and the file
    rate control) turns: a module number, or "auto", the module whose symbols carry the most
    bits on the fit audio (``bits_per_module``; recorded as ``model.rate_module=N``).
    ``overrides`` (``KEY=VALUE``) change settings that leave the weights' shapes alone, e.g.
    ``model.entropy_coder=best``; they are applied to the stored recipe before the weights are
    loaded (strictly) and recorded."""
    from safetensors.torch import save_file

    if not _NAME_RE.match(name):
        raise RecipeError(f"--name '{name}' must be letters, digits, '.', '_' or '-' (at most 100)")
    run_dir = Path(run_dir)
    if checkpoint is None and not run_dir.is_dir():
        raise WeightsError(f"run directory not found: {run_dir}")
    which, checkpoint = checkpoint, resolve_checkpoint(run_dir, checkpoint)
    if checkpoint is None:
        raise WeightsError(f"no checkpoint in {run_dir / 'checkpoints'}")
    if str(which) == "best" and not checkpoint.is_file():
        raise WeightsError(f"no {checkpoint}: the run was not trained with train.keep_best")
    state = load_checkpoint(checkpoint)
    step, total = int(state["step"]), int(state["total_steps"])
    if step < total and checkpoint.name == BEST_NAME and not allow_incomplete:
        latest = latest_checkpoint(checkpoint.parent.parent)  # a finished run's best step counts as complete
        allow_incomplete = latest is not None and int(load_checkpoint(latest)["step"]) >= total
    if step < total and not allow_incomplete:
        raise WeightsError(f"run {run_dir} stopped at step {step} of {total}; finish it with --resume "
                           "or pass --allow-incomplete")
    recipe = recipe_from_dict(state["recipe"])
    if overrides:
        recipe = apply_overrides(recipe, list(overrides))
    stored_recipe = recipe_to_dict(recipe) if overrides else state["recipe"]
    model = build_model(recipe)
    # tables that the export fits (e.g. a cascade's ladder-step tables) may be absent from a
    # training checkpoint; every other tensor must match
    fitted_here = tuple(getattr(model, "export_fitted_prefixes", ()))
    try:
        missing, unexpected = model.load_state_dict(state["model"], strict=not fitted_here)
    except RuntimeError as e:
        raise WeightsError(f"checkpoint {checkpoint} does not match recipe '{recipe.name}': "
                           f"{str(e).splitlines()[0]}") from None
    missing = [k for k in missing if not k.startswith(fitted_here)] if fitted_here else missing
    if missing or unexpected:
        raise WeightsError(f"checkpoint {checkpoint} does not match recipe '{recipe.name}': "
                           + "; ".join(f"{what} key(s) {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}"
                                       for what, keys in (("missing", missing), ("unexpected", unexpected)) if keys))

    say = progress or (lambda msg: None)
    entropy_fit = bitrate = trim = None
    if trim_rate and not callable(getattr(model, "set_code_scale", None)):
        raise RecipeError(f"--trim-rate: {type(model).__name__} has no rate trim (CMRL and CQ have)")
    if callable(getattr(model, "fit_entropy_coder", None)):
        manifest = data if data is not None else (state.get("meta") or {}).get("manifest")
        if manifest is not None and data is None and str(manifest).endswith(".ncpack") and Path(manifest).is_file():
            from ..data.packed import read_pack  # a run trained on an audio pack: the corpus it was packed from

            manifest = read_pack(manifest).header.get("manifest")
        if manifest is None or not Path(manifest).is_file():
            raise RecipeError(f"{type(model).__name__} fits its entropy coder on training audio at export: "
                              f"pass --data MANIFEST (the run's manifest {manifest!r} is not there)")
        t = recipe.train
        sr = int(t.sample_rate or model.sample_rate)
        model.eval()
        if trim_rate:  # the trim leaves the tables fitted on the same audio at its code_scale
            recipe, trim = _trim_rate(model, recipe, manifest, fit_seconds, trim_seconds, trim_tolerance,
                                      trim_statistic, say, trim_module, trim_split, trim_with_rate_control)
            overrides = [*overrides, f"model.code_scale={trim.code_scale!r}"]
            if hasattr(model.config, "rate_module"):
                overrides.append(f"model.rate_module={model.config.rate_module}")
            stored_recipe = recipe_to_dict(recipe)
            entropy_fit = trim.entropy_fit
        else:
            say(f"fitting the entropy coder on up to {fit_seconds:g} s of '{t.train_split}' audio of {manifest}")
            entropy_fit = model.fit_entropy_coder(
                manifest_signals(manifest, t.train_split, t.sources, sr, fit_seconds, interleave=True))
        if callable(getattr(model, "compress", None)) and hasattr(model, "bitrates"):
            kbps = float(model.bitrates.default)
            say(f"measuring file sizes on the '{t.val_split}' split")
            bitrate = measure_file_bitrate(model, manifest_signals(manifest, t.val_split, t.sources, sr, 600.0), kbps)
            bitrate.update(split=t.val_split, nominal_kbps=kbps)

    tensors: dict[str, torch.Tensor] = {}
    max_err = 0.0
    for k, v in model.state_dict().items():
        v = v.detach().cpu()
        if fp16 and v.dtype == torch.float32:
            h = v.to(torch.float16)
            if not torch.isfinite(h[torch.isfinite(v)]).all():
                raise WeightsError(f"weight '{k}' overflows float16; export without --fp16")
            if v.numel():
                max_err = max(max_err, float((h.float() - v).abs().max()))
            v = h
        tensors[k] = v.contiguous().clone()
    dtype = "float16" if fp16 else "float32"
    num_params = sum(p.numel() for p in model.parameters())
    native = callable(getattr(model, "save_pretrained", None))

    dest = Path(dest) if dest is not None else default_weights_dir()
    dest.mkdir(parents=True, exist_ok=True)
    final = dest / name
    if final.exists() and not force:
        raise WeightsError(f"{final} already exists; pass --force to replace it")
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=dest))
    try:
        if native:  # the codec's own format, so that ``Codec.from_pretrained(.../model.safetensors)`` loads it
            _save_native(model, tmp / WEIGHTS_FILE, fp16)
        else:
            save_file(tensors, str(tmp / WEIGHTS_FILE),
                      metadata={"format": FORMAT, "recipe": recipe.name, "dtype": dtype, "step": str(step)})
        (tmp / CONFIG_FILE).write_text(json.dumps(to_plain(recipe.model), indent=2) + "\n")
        training = {
            "format": FORMAT, "name": name, "recipe": stored_recipe, "step": step, "total_steps": total,
            "export_overrides": list(overrides),
            "checkpoint": checkpoint.name, "dtype": dtype, "max_abs_error": max_err,
            "num_parameters": num_params,
            "weights_writer": f"{type(model).__name__}.save_pretrained" if native else "neurocodec export",
            "meta": state.get("meta", {}), "metrics": state.get("metrics", {}),
            "entropy_coder": entropy_fit, "file_bitrate": bitrate,
            "rate_trim": trim.to_dict() if trim is not None else None,
        }
        (tmp / TRAINING_FILE).write_text(json.dumps(training, indent=2) + "\n")
        digests = {f: _sha256(tmp / f) for f in (WEIGHTS_FILE, CONFIG_FILE, TRAINING_FILE)}
        (tmp / CARD_FILE).write_text(render_card(name, stored_recipe, training, digests))
        os.chmod(tmp, 0o755)
        old = None
        if final.exists():
            old = dest / f".{name}.old.{os.getpid()}"
            os.replace(final, old)
        os.replace(tmp, final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    files = [final / f for f in (WEIGHTS_FILE, CONFIG_FILE, TRAINING_FILE, CARD_FILE)]
    return ExportResult(final, files, step, total, dtype, num_params, max_err, bitrate,
                        trim.to_dict() if trim is not None else None)


def _trim_rate(model, recipe, manifest, fit_seconds: float, trim_seconds: float, tolerance: float,
               statistic: str, say, module: str = "auto", split: str | None = None,
               with_rate_control: bool = False):
    """Run the rate trim on training audio (fit set first, calibration files after it) on the
    step of the rate module (``module``: a number, or "auto": the module whose symbols carry
    the most bits on the fit audio); the model is left at the module and ``code_scale``
    found, and the recipe gets the same values so that config, recipe and weights agree.
    Returns ``(recipe, RateTrim)``."""
    t = recipe.train
    sr = int(t.sample_rate or model.sample_rate)
    fit = list(manifest_signals(manifest, t.train_split, t.sources, sr, fit_seconds, interleave=True))
    fitted = sum(x.shape[1] for x in fit) / sr
    split = split or t.train_split
    cal = list(manifest_signals(manifest, split, t.sources, sr, trim_seconds, interleave=True,
                                skip_seconds=fitted if split == t.train_split else 0.0))
    if not cal:
        if split != t.train_split:
            raise RecipeError(f"--trim-split: no '{split}' audio of the recipe's sources in {manifest}")
        raise RecipeError(f"--trim-rate: no '{t.train_split}' audio of {manifest} is left after the "
                          f"{fitted:.0f} s that fit the entropy coder; lower --fit-seconds")
    say(f"trimming the rate on {sum(x.shape[1] for x in cal) / sr:.0f} s of '{split}' audio "
        f"(tables fitted on {fitted:.0f} s of '{t.train_split}')")
    chosen = []
    if callable(getattr(model, "set_rate_module", None)):
        number = _rate_module(model, fit, module, say)
        model.set_rate_module(number)
        chosen = [f"model.rate_module={number}"]
    elif module != "auto":
        raise RecipeError(f"--trim-module: {type(model).__name__} has a single quantizer step to trim")
    trim = trim_code_scale(model, fit, cal, float(model.bitrates.default), tolerance=tolerance,
                           statistic=statistic, progress=say, with_rate_control=with_rate_control)
    trim.calibration_split = split
    return apply_overrides(recipe, [*chosen, f"model.code_scale={trim.code_scale!r}"]), trim


def _rate_module(model, fit, module: str, say) -> int:
    """The module number ``module`` names ("auto": the one whose symbols carry the most bits on
    the fit audio ``fit``)."""
    if module != "auto":
        try:
            return int(module)
        except ValueError:
            raise RecipeError(f"--trim-module must be a module number or 'auto', not {module!r}") from None
    bits = model.bits_per_module(fit)
    number = max(bits, key=lambda n: (bits[n], -n))
    say("rate module: " + ", ".join(f"module {n} {b / 1000:.2f} kbps" for n, b in sorted(bits.items()))
        + f" -> the trim turns module {number}'s step")
    return number


def _save_native(model: torch.nn.Module, path: Path, fp16: bool) -> None:
    """``model.save_pretrained(path)`` (float32 tensors cast to float16 first when ``fp16``)."""
    if fp16:
        model = copy.deepcopy(model)
        for t in list(model.parameters()) + list(model.buffers()):
            if t.dtype == torch.float32:
                t.data = t.data.to(torch.float16)
    model.save_pretrained(path)
    if not path.is_file():
        raise WeightsError(f"{type(model).__name__}.save_pretrained did not write a single file at {path}")


def load_exported(path: str | os.PathLike, dtype: torch.dtype = torch.float32) -> ExportedWeights:
    """Read weights written by :func:`export_run` (``path``: the folder or its ``model.safetensors``).

    Floating-point tensors are converted to ``dtype`` (float16 exports come back as float32 by
    default); a missing or foreign folder raises :class:`~neurocodec.errors.WeightsError`."""
    from ..codecs.weights_file import load_safetensors

    path = Path(path)
    folder = path.parent if path.name == WEIGHTS_FILE else path
    missing = [f for f in (WEIGHTS_FILE, CONFIG_FILE) if not (folder / f).is_file()]
    if missing:
        raise WeightsError(f"no exported weights in {folder} (missing {', '.join(missing)})")
    try:
        tensors, meta = load_safetensors(folder / WEIGHTS_FILE)
        config = json.loads((folder / CONFIG_FILE).read_text())
    except Exception as e:
        raise WeightsError(f"cannot read weights in {folder}: {type(e).__name__}: {str(e).splitlines()[0]}") from None
    training = json.loads((folder / TRAINING_FILE).read_text()) if (folder / TRAINING_FILE).is_file() else {}
    if meta.get("format") != FORMAT and training.get("format") != FORMAT:
        raise WeightsError(f"{folder} was not written by neurocodec export")
    stored = training.get("dtype") or meta.get("dtype", "float32")
    state = {k: (v.to(dtype) if v.dtype in (torch.float16, torch.float32) else v) for k, v in tensors.items()}
    card = (folder / CARD_FILE).read_text() if (folder / CARD_FILE).is_file() else ""
    return ExportedWeights(config, state, card, training, stored)
