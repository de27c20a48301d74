"""Training hyper-parameters (:class:`TrainConfig`) and typed ``key=value`` overrides of dataclasses.

Values given as text (``--set lr=2e-5``) or read from YAML are converted to the field's declared
type; unknown keys and values of the wrong type raise :class:`RecipeError`.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, fields, is_dataclass
from typing import Any, Mapping

from .errors import RecipeError

AMP_MODES = ("off", "fp16", "bf16")
SCHEDULES = ("constant", "cosine", "linear")
OPTIMIZERS = ("adam", "adamw")


@dataclass
class TrainConfig:
    """Hyper-parameters shared by every learned codec's training run.

    ``batch_size`` is global (split evenly over DDP processes).  ``lr`` is the peak learning rate;
    ``schedule`` decays it to ``lr_min`` over each phase after ``warmup_steps`` of linear warm-up
    (byun2023 §4 uses cosine annealing between 1e-4 and 5e-5; zhen2019 §3 constant Adam rates).
    A step whose loss exceeds ``explode_factor`` times the median of the last ``explode_window``
    losses, or whose loss or gradient is not finite, stops the run (0 disables the ratio test).
    ``max_seconds`` bounds one session's wall time (from the start of ``Trainer.fit``): the step
    that reaches it is checkpointed and the session stops cleanly (schedules still follow
    ``steps``; ``--resume`` continues); ``ckpt_every_seconds`` adds time-based checkpoints to the
    ``ckpt_every`` step interval (the shared GPU plan, ``scripts/gpu_train.py``, uses both).
    ``keep_best`` names a validation metric (``val/pesq_wb``): each validation that improves it
    (``keep_best_mode`` max or min) writes ``checkpoints/best.pt``, which pruning leaves alone and
    ``neurocodec export RUN --checkpoint best`` exports."""

    steps: int = 10_000
    batch_size: int = 32
    segment_samples: int = 16_000
    val_segment_samples: int | None = None  # None: segment_samples (PESQ needs >= 0.25 s)
    sample_rate: int | None = None  # None: the model's own rate
    train_split: str = "train"
    sources: tuple[str, ...] = ()  # manifest sources to train and validate on (default: all)
    val_split: str = "valid"
    lr: float = 1e-4
    lr_min: float = 0.0
    schedule: str = "constant"
    warmup_steps: int = 0
    optimizer: str = "adam"
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0
    grad_clip: float = 0.0  # max global grad norm; 0 = no clipping
    seed: int = 0
    log_every: int = 50
    val_every: int = 1000
    val_batches: int = 8
    audio_samples: int = 2
    ckpt_every: int = 1000
    ckpt_every_seconds: float = 0.0  # also checkpoint when this much wall time passed since the last one; 0 = off
    max_seconds: float = 0.0  # wall-clock budget of one session: checkpoint and stop when reached; 0 = none
    keep_last: int = 3
    keep_best: str = ""  # validation metric whose best value keeps a copy in checkpoints/best.pt, e.g. val/pesq_wb
    keep_best_mode: str = "max"  # max | min: which way keep_best improves
    explode_factor: float = 1e3
    explode_window: int = 100
    amp: str = "off"  # off | fp16 (CUDA only) | bf16 (CUDA or CPU autocast)
    compile: bool = False  # torch.compile the training step
    threads: int = 0  # torch.set_num_threads; 0 = leave torch's default
    num_workers: int = 0  # DataLoader worker processes
    find_unused_parameters: bool = False  # DDP option for models with branches unused in a phase
    phases: tuple[str, ...] = ()  # train only these phases of the model's schedule (default: all)

    def validate(self) -> "TrainConfig":
        """Raise :class:`RecipeError` for values no run can use."""
        positive = ("steps", "batch_size", "segment_samples", "log_every", "val_every", "ckpt_every",
                    "keep_last", "explode_window")
        for name in positive:
            if getattr(self, name) < 1:
                raise RecipeError(f"train.{name} must be at least 1, got {getattr(self, name)}")
        for name in ("warmup_steps", "val_batches", "audio_samples", "threads", "num_workers"):
            if getattr(self, name) < 0:
                raise RecipeError(f"train.{name} must not be negative, got {getattr(self, name)}")
        if not self.lr > 0 or self.lr_min < 0 or self.lr_min > self.lr:
            raise RecipeError(f"need 0 <= train.lr_min <= train.lr and lr > 0 (lr={self.lr}, lr_min={self.lr_min})")
        if self.grad_clip < 0 or self.explode_factor < 0 or self.weight_decay < 0:
            raise RecipeError("train.grad_clip, train.explode_factor and train.weight_decay must not be negative")
        for name, allowed in (("amp", AMP_MODES), ("schedule", SCHEDULES), ("optimizer", OPTIMIZERS)):
            if getattr(self, name) not in allowed:
                raise RecipeError(f"train.{name} must be one of {', '.join(allowed)}, got '{getattr(self, name)}'")
        if self.keep_best_mode not in ("max", "min"):
            raise RecipeError(f"train.keep_best_mode must be max or min, got '{self.keep_best_mode}'")
        if self.keep_best and not self.keep_best.startswith("val/"):
            raise RecipeError(f"train.keep_best names a validation metric (val/...), got '{self.keep_best}'")
        if self.val_segment_samples is not None and self.val_segment_samples < 1:
            raise RecipeError(f"train.val_segment_samples must be positive, got {self.val_segment_samples}")
        for name in ("max_seconds", "ckpt_every_seconds"):
            if not getattr(self, name) >= 0 or math.isinf(getattr(self, name)):
                raise RecipeError(f"train.{name} must be a finite number of seconds >= 0 (0 = off), "
                                  f"got {getattr(self, name)}")
        if self.sample_rate is not None and self.sample_rate < 1:
            raise RecipeError(f"train.sample_rate must be positive, got {self.sample_rate}")
        return self


#: fields that may change when a run is resumed (they do not change what is being trained)
RESUMABLE_FIELDS = frozenset({
    "steps", "log_every", "val_every", "val_batches", "audio_samples", "ckpt_every", "keep_last",
    "amp", "compile", "threads", "num_workers", "explode_factor", "explode_window", "val_segment_samples",
    "max_seconds", "ckpt_every_seconds", "keep_best", "keep_best_mode",
})


# -- typed conversion -------------------------------------------------------------------------

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_NONE = {"none", "null", "~", ""}


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def convert(value: Any, tp: Any, where: str) -> Any:
    """Convert ``value`` (text or a YAML/JSON value) to the annotation ``tp``."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if type(None) in args and (value is None or (isinstance(value, str) and value.strip().lower() in _NONE)):
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return convert(value, a, where)
            except RecipeError as e:
                errors.append(str(e))
        raise RecipeError(errors[0] if errors else f"{where}: cannot use {value!r}")
    if origin in (tuple, list):
        if isinstance(value, str):
            text = value.strip()
            if text.startswith(("[", "(")):
                text = text[1:-1]
            value = [v for v in (s.strip() for s in text.split(",")) if v]
        if not isinstance(value, (list, tuple)):
            raise RecipeError(f"{where}: expected a list, got {value!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise RecipeError(f"{where}: expected {len(args)} values, got {len(value)}")
            return tuple(convert(v, a, where) for v, a in zip(value, args))
        inner = args[0] if args else Any
        items = [convert(v, inner, where) for v in value]
        return tuple(items) if origin is tuple else items
    if origin is typing.Literal:
        for a in args:
            if str(a) == str(value):
                return a
        raise RecipeError(f"{where}: must be one of {', '.join(map(str, args))}, got {value!r}")
    if origin in (dict, Mapping) or tp is dict:
        if not isinstance(value, Mapping):
            raise RecipeError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise RecipeError(f"{where}: expected a mapping of fields, got {value!r}")
        return dataclass_from_dict(tp, value, where)
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, (int, str)) and str(value).strip().lower() in _TRUE | _FALSE:
            return str(value).strip().lower() in _TRUE
        raise RecipeError(f"{where}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise RecipeError(f"{where}: expected an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                f = float(value.replace("_", ""))
            except ValueError:
                f = None
            if f is not None and f.is_integer():
                return int(f)
        raise RecipeError(f"{where}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, bool):
            raise RecipeError(f"{where}: expected a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise RecipeError(f"{where}: expected a number, got {value!r}") from None
    if tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise RecipeError(f"{where}: expected text, got {value!r}")
    return value


def dataclass_from_dict(cls: type, data: Mapping[str, Any], where: str = "") -> Any:
    """Build the dataclass ``cls`` from a mapping, converting every value to its field's type.

    Unknown keys raise :class:`RecipeError`; missing keys take the field defaults."""
    hints = _hints(cls)
    names = {f.name for f in fields(cls) if f.init}
    unknown = sorted(set(data) - names)
    if unknown:
        raise RecipeError(f"{where or cls.__name__}: unknown field(s) {', '.join(unknown)} "
                          f"(known: {', '.join(sorted(names))})")
    kwargs = {k: convert(v, hints[k], f"{where + '.' if where else ''}{k}") for k, v in data.items()}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise RecipeError(f"{where or cls.__name__}: {e}") from None


def to_plain(obj: Any) -> Any:
    """A dataclass as JSON-compatible nested dicts/lists (tuples become lists)."""
    if is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_plain(getattr(obj, f.name)) for f in fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    if isinstance(obj, Mapping):
        return {str(k): to_plain(v) for k, v in obj.items()}
    return obj


def set_field(obj: Any, path: str, value: Any, prefix: str = "") -> Any:
    """Return a copy of dataclass ``obj`` with the dotted field ``path`` set to ``value`` (converted)."""
    head, _, rest = path.partition(".")
    names = {f.name for f in fields(obj)}
    where = f"{prefix}{head}"
    if head not in names:
        raise RecipeError(f"unknown setting '{prefix}{path}' (known: "
                          f"{', '.join(prefix + n for n in sorted(names))})")
    tp = _hints(type(obj))[head]
    current = getattr(obj, head)
    if rest:
        if not (is_dataclass(current) and not isinstance(current, type)):
            raise RecipeError(f"setting '{where}' has no sub-field '{rest}'")
        new = set_field(current, rest, value, prefix=f"{where}.")
    else:
        if is_dataclass(current) and not isinstance(value, Mapping):
            raise RecipeError(f"setting '{where}' is a group; set one of its fields ('{where}.FIELD=...')")
        new = convert(value, tp, where)
    try:
        return dataclasses.replace(obj, **{head: new})
    except (TypeError, ValueError) as e:  # the config's own __post_init__ checks
        raise RecipeError(f"cannot set {where}: {e}") from None


def has_field(obj: Any, path: str) -> bool:
    """Whether the dotted field ``path`` exists in dataclass ``obj``."""
    head, _, rest = path.partition(".")
    if not (is_dataclass(obj) and not isinstance(obj, type)) or head not in {f.name for f in fields(obj)}:
        return False
    return has_field(getattr(obj, head), rest) if rest else True


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mapping -> ``{"a.b": value}`` (used for YAML recipe files)."""
    out: dict[str, Any] = {}
    for k, v in data.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out
