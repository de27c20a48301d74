"""What the trainer needs from a model: the :class:`TrainableCodec` protocol.

The protocol is structural (duck-typed) so that codec modules, which sit *below* ``train`` in the
layering, never import this module.  A model is a ``torch.nn.Module`` with

* ``training_step(batch, step) -> LossOutput`` - ``batch`` is float32 ``(B, 1, T)`` audio on the
  training device, ``step`` the 0-based global step being computed.  The result may be a
  :class:`LossOutput`, any object with ``total`` (or ``loss``) and ``terms`` attributes, a mapping
  with a ``"loss"``/``"total"`` entry (the other entries are terms) or a bare scalar tensor;
* optionally ``phases(total_steps) -> list`` - a multi-phase schedule (CMRL, zhen2019 §2.2.1:
  greedy per-module training, then cross-module fine-tuning).  Each item is a :class:`Phase` or any
  object/mapping with the same field names; the steps must add up to ``total_steps``;
* optionally ``set_phase(phase)`` - called with the model's own phase object whenever a phase
  starts (also when a resumed run re-enters it);
* optionally an attribute ``phase_start_step``, which the trainer sets to the global step at
  which the current phase starts (for schedules that restart within each phase);
* optionally ``validation_step(batch) -> dict[str, float]`` and ``reconstruct(batch) -> Tensor``
  (``(B, 1, T)`` decoded audio, used for validation quality metrics and audio samples);
* ``config`` (a dataclass) and ``sample_rate``.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field, replace
from typing import Any, Mapping, Protocol, Sequence, runtime_checkable

import torch

from .errors import RecipeError


@dataclass
class LossOutput:
    """One training step's result: the scalar loss to minimise and namespaced terms to log.

    ``terms`` maps keys such as ``"loss/mse"`` or ``"rate/bits_per_second"`` to floats or 0-d
    tensors (converted only when logged)."""

    total: torch.Tensor
    terms: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Phase:
    """One stage of a multi-phase schedule.

    ``trainable`` lists parameter-name prefixes (as in ``model.named_parameters()``) trained in
    this phase; empty means every parameter.  ``lr`` overrides the recipe learning rate;
    ``lr_scale`` multiplies it for parameters under a prefix (separate optimizer param groups)."""

    name: str
    steps: int
    lr: float | None = None
    trainable: tuple[str, ...] = ()
    lr_scale: tuple[tuple[str, float], ...] = ()

    @staticmethod
    def from_any(obj: Any) -> "Phase":
        """Convert a model's phase object (dataclass, namespace or mapping) to a :class:`Phase`."""
        get = obj.get if isinstance(obj, Mapping) else (lambda k, d=None: getattr(obj, k, d))
        name, steps = get("name"), get("steps")
        if name is None or steps is None:
            raise TypeError(f"a phase needs 'name' and 'steps', got {obj!r}")
        trainable = get("trainable", ()) or ()
        if isinstance(trainable, str):
            trainable = (trainable,)
        scale = get("lr_scale", ()) or ()
        if isinstance(scale, Mapping):
            scale = tuple(scale.items())
        lr = get("lr", None)
        return Phase(str(name), int(steps), None if lr is None else float(lr),
                     tuple(str(t) for t in trainable), tuple((str(k), float(v)) for k, v in scale))


@dataclass(frozen=True)
class ScheduledPhase:
    """A :class:`Phase` placed on the global step axis: it covers steps ``[start, end)``."""

    index: int
    phase: Phase
    start: int
    end: int
    source: Any = None  # the model's own phase object, handed back to ``set_phase``


@runtime_checkable
class TrainableCodec(Protocol):
    """Structural type of a trainable model (see the module docstring)."""

    def training_step(self, batch: torch.Tensor, step: int) -> Any: ...


def coerce_loss(out: Any) -> LossOutput:
    """Normalise whatever ``training_step`` returned into a :class:`LossOutput`."""
    if isinstance(out, LossOutput):
        return out
    if isinstance(out, torch.Tensor):
        return LossOutput(out, {"loss/total": out.detach()})
    if isinstance(out, Mapping):
        key = "loss" if "loss" in out else "total" if "total" in out else None
        if key is None:
            raise TypeError("training_step returned a mapping without a 'loss' or 'total' entry")
        return LossOutput(out[key], {k: v for k, v in out.items() if k != key})
    total = getattr(out, "total", None)
    if total is None:
        total = getattr(out, "loss", None)
    if total is None:
        raise TypeError(f"training_step returned {type(out).__name__}, which has no 'total' or 'loss'")
    terms = getattr(out, "terms", None)
    if terms is None:
        terms = getattr(out, "logs", None) or getattr(out, "metrics", None) or {}
    return LossOutput(total, dict(terms))


def to_float(v: Any) -> float:
    """A logged term as a Python float (0-d tensors are synchronised here, not at every step)."""
    if isinstance(v, torch.Tensor):
        return float(v.detach().float().mean().item())
    return float(v)


def schedule_phases(model: Any, total_steps: int, only: Sequence[str] = ()) -> list[ScheduledPhase]:
    """The model's phase schedule on the global step axis (one phase ``"train"`` when it has none).

    The model's ``phases`` may take the total step budget as its only argument; the phase steps
    must add up to that budget.  ``only`` keeps the named phases (in the model's order) and
    shares the budget among them in proportion to their steps (e.g. fine-tuning alone, starting
    from ``--init`` weights)."""
    fn = getattr(model, "phases", None)
    if fn is None:
        if only and set(only) != {"train"}:
            raise RecipeError(f"the model has no phases to select ({', '.join(only)}); it trains as one phase 'train'")
        return [ScheduledPhase(0, Phase("train", total_steps), 0, total_steps, None)]
    try:
        n_params = len(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        n_params = 1
    raw = list(fn(total_steps) if n_params >= 1 else fn())
    if not raw:
        raise TypeError("model.phases() returned no phases")
    phases = [(Phase.from_any(obj), obj) for obj in raw]
    if only:
        names = [p.name for p, _ in phases]
        unknown = [n for n in only if n not in names]
        if unknown:
            raise RecipeError(f"unknown phase(s) {', '.join(unknown)} (the model's phases: {', '.join(names)})")
        phases = [(p, obj) for p, obj in phases if p.name in only]
        steps = split_steps(total_steps, [max(p.steps, 1) for p, _ in phases])
        phases = [(replace(p, steps=n), obj) for (p, obj), n in zip(phases, steps)]
    out, start = [], 0
    for i, (ph, obj) in enumerate(phases):
        if ph.steps < 0:
            raise TypeError(f"phase '{ph.name}' has a negative step count")
        out.append(ScheduledPhase(i, ph, start, start + ph.steps, obj))
        start += ph.steps
    if start != total_steps:
        names = ", ".join(f"{p.phase.name}={p.phase.steps}" for p in out)
        raise RecipeError(f"the model's phases ({names}) add up to {start} steps, "
                          f"but the recipe asks for {total_steps}")
    return out


def phase_at(schedule: Sequence[ScheduledPhase], step: int) -> ScheduledPhase:
    """The phase that computes global step ``step`` (the last one for steps past the end)."""
    for p in schedule:
        if p.start <= step < p.end:
            return p
    return schedule[-1]


def split_steps(total: int, weights: Sequence[float]) -> list[int]:
    """Split ``total`` steps in proportion to ``weights`` (largest-remainder rounding, exact sum).

    A helper for models whose ``phases(total_steps)`` divide the budget, e.g. CMRL's two greedy
    module phases and the fine-tuning phase."""
    if not weights or any(w < 0 for w in weights) or sum(weights) <= 0:
        raise ValueError("weights must be non-negative and not all zero")
    s = float(sum(weights))
    raw = [total * w / s for w in weights]
    base = [math.floor(r) for r in raw]
    rest = total - sum(base)
    order = sorted(range(len(raw)), key=lambda i: (base[i] - raw[i], i))
    for i in order[:rest]:
        base[i] += 1
    return base
