"""Optimizers, learning-rate schedules and the divergence monitor of a training phase."""

from __future__ import annotations

import math
import statistics
from collections import deque
from dataclasses import dataclass
from typing import Any, Iterable

import torch

from .config import TrainConfig
from .protocol import Phase


class LrFactor:
    """Multiplier of the peak learning rate at phase-local step ``t``: linear warm-up over
    ``warmup`` steps, then constant, cosine or linear decay to ``floor`` (= lr_min / lr) at
    ``steps``.  A picklable object so ``LambdaLR.state_dict`` stores it."""

    def __init__(self, kind: str, steps: int, warmup: int, floor: float):
        self.kind, self.steps, self.warmup, self.floor = kind, int(steps), int(warmup), float(floor)

    def __call__(self, t: int) -> float:
        if self.warmup and t < self.warmup:
            return (t + 1) / self.warmup
        if self.kind == "constant":
            return 1.0
        span = max(self.steps - self.warmup, 1)
        x = min(max(t - self.warmup, 0) / span, 1.0)
        if self.kind == "cosine":
            return self.floor + (1.0 - self.floor) * 0.5 * (1.0 + math.cos(math.pi * x))
        return 1.0 - (1.0 - self.floor) * x  # linear


def under(name: str, prefix: str) -> bool:
    """Whether parameter ``name`` lies under the module path ``prefix`` ("enc" matches "enc.w",
    not "encoder.w")."""
    prefix = prefix.rstrip(".")
    return name == prefix or name.startswith(prefix + ".")


def select_parameters(model: torch.nn.Module, phase: Phase) -> list[tuple[str, torch.nn.Parameter]]:
    """Set ``requires_grad`` so only the phase's trainable prefixes train; return those parameters."""
    chosen = []
    for name, p in model.named_parameters():
        on = not phase.trainable or any(under(name, t) for t in phase.trainable)
        p.requires_grad_(on)
        if on:
            chosen.append((name, p))
    if not chosen:
        raise ValueError(f"phase '{phase.name}' trains no parameters (trainable={phase.trainable})")
    return chosen


def build_optimizer(params: Iterable[tuple[str, torch.nn.Parameter]], phase: Phase,
                    cfg: TrainConfig) -> torch.optim.Optimizer:
    """Adam/AdamW over the phase's parameters, one param group per ``lr_scale`` prefix."""
    base_lr = phase.lr if phase.lr is not None else cfg.lr
    groups: dict[float, list[torch.nn.Parameter]] = {}
    for name, p in params:
        scale = 1.0
        for prefix, s in phase.lr_scale:
            if under(name, prefix):
                scale = s
                break
        groups.setdefault(scale, []).append(p)
    param_groups = [{"params": ps, "lr": base_lr * s} for s, ps in groups.items()]
    cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    return cls(param_groups, lr=base_lr, betas=tuple(cfg.betas), eps=cfg.eps, weight_decay=cfg.weight_decay)


def build_scheduler(opt: torch.optim.Optimizer, phase: Phase, cfg: TrainConfig) -> torch.optim.lr_scheduler.LambdaLR:
    base_lr = phase.lr if phase.lr is not None else cfg.lr
    floor = min(cfg.lr_min / base_lr, 1.0) if base_lr > 0 else 0.0
    return torch.optim.lr_scheduler.LambdaLR(opt, LrFactor(cfg.schedule, phase.steps, cfg.warmup_steps, floor))


@dataclass
class Verdict:
    """Result of :meth:`DivergenceMonitor.check`: ``ok`` or the reason the run must stop."""

    ok: bool
    reason: str = ""


class DivergenceMonitor:
    """Stops a run whose loss is non-finite, whose gradient norm is non-finite, or whose loss
    exceeds ``factor`` times the running median of the last ``window`` losses."""

    def __init__(self, factor: float, window: int):
        self.factor = float(factor)
        self.history: deque[float] = deque(maxlen=int(window))

    def check(self, loss: float, grad_finite: bool) -> Verdict:
        if not math.isfinite(loss):
            return Verdict(False, f"loss is {loss}")
        if not grad_finite:
            return Verdict(False, f"gradients are not finite (loss {loss:.4g})")
        if self.factor > 0 and len(self.history) >= min(10, self.history.maxlen or 10):
            med = statistics.median(self.history)
            if med > 0 and loss > self.factor * med:
                return Verdict(False, f"loss exploded to {loss:.4g} (> {self.factor:g} x running median {med:.4g})")
        self.history.append(loss)
        return Verdict(True)

    def state_dict(self) -> dict[str, Any]:
        return {"history": list(self.history)}

    def load_state_dict(self, d: dict[str, Any]) -> None:
        self.history.clear()
        self.history.extend(float(x) for x in d.get("history", []))
