"""Warm starts: initialise a new run's model from another run's weights (``train --init``).

Fine-tuning a shipped codec on one's own data, moving an operating point to another bitrate,
or seeding a deeper cascade with the modules of a shallower one all start from weights that
were trained before.  :func:`init_from` copies every tensor of the source whose name and shape
match the new model; everything else keeps its fresh initialisation and is reported.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import torch

from .checkpoint import latest_checkpoint, load_checkpoint
from .errors import RecipeError


@dataclass
class InitReport:
    """What :func:`init_from` copied: tensor names ``loaded``, ``mismatched`` (same name, other
    shape) and ``missing`` (not in the source); ``source`` is the file read."""

    source: Path
    loaded: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    def summary(self) -> str:
        text = f"initialised {len(self.loaded)} tensors from {self.source}"
        if self.mismatched:
            text += f"; {len(self.mismatched)} of another shape kept fresh ({', '.join(self.mismatched[:3])}...)"
        if self.missing:
            text += f"; {len(self.missing)} not in the source kept fresh"
        return text


def source_state(path: str | os.PathLike) -> tuple[Path, Mapping[str, torch.Tensor]]:
    """The model state stored at ``path``: a run folder (its latest checkpoint), a training
    checkpoint (``.pt``) or exported weights (``.safetensors``, or a folder holding
    ``model.safetensors``)."""
    p = Path(path)
    if p.is_dir():
        if (p / "model.safetensors").is_file():
            p = p / "model.safetensors"
        else:
            ckpt = latest_checkpoint(p)
            if ckpt is None:
                raise RecipeError(f"--init: {p} holds neither checkpoints nor model.safetensors")
            p = ckpt
    if not p.is_file():
        raise RecipeError(f"--init: {p} not found")
    if p.suffix == ".safetensors":
        from ..codecs.weights_file import load_safetensors
        from ..errors import WeightsError

        try:
            return p, load_safetensors(p)[0]  # int8 rows of exported weights come back as floats
        except WeightsError as exc:
            raise RecipeError(f"--init: {exc}") from None
    return p, load_checkpoint(p)["model"]


def init_from(model: torch.nn.Module, path: str | os.PathLike) -> InitReport:
    """Copy the tensors of ``path`` (see :func:`source_state`) into ``model`` where name and shape
    match; raise :class:`RecipeError` when none does."""
    src_path, state = source_state(path)
    report = InitReport(src_path)
    own = model.state_dict()
    update = {}
    for name, tensor in own.items():
        if name not in state:
            report.missing.append(name)
        elif tuple(state[name].shape) != tuple(tensor.shape):
            report.mismatched.append(name)
        else:
            update[name] = state[name].to(dtype=tensor.dtype)
            report.loaded.append(name)
    if not update:
        raise RecipeError(f"--init: no tensor of {src_path} fits this model (names or shapes differ)")
    model.load_state_dict(update, strict=False)
    return report
