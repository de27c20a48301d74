"""Atomic, self-describing training checkpoints.

A checkpoint (``RUN_DIR/checkpoints/step_00001000.pt``) holds the recipe as plain data, the model,
optimizer, LR-scheduler and AMP-scaler states, the random states of Python, NumPy and torch of
every process, the data-stream position, the phase and step, and run metadata (wall time, data
manifest hash, commands).  It is written to a temporary file and renamed (``os.replace``), and
loads with ``torch.load(weights_only=True)`` - no pickled code.
"""

from __future__ import annotations

import os
import random
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import WeightsError
from .recipe import Recipe, build_model, recipe_from_dict

FORMAT = "neurocodec-train-checkpoint"
VERSION = 1
_NAME = re.compile(r"^step_(\d+)\.pt$")
#: the copy of the checkpoint with the best ``train.keep_best`` validation metric (never pruned)
BEST_NAME = "best.pt"


def checkpoint_dir(run_dir: str | os.PathLike) -> Path:
    return Path(run_dir) / "checkpoints"


def checkpoint_path(run_dir: str | os.PathLike, step: int) -> Path:
    return checkpoint_dir(run_dir) / f"step_{step:08d}.pt"


def list_checkpoints(run_dir: str | os.PathLike) -> list[Path]:
    """The run's checkpoints, oldest first."""
    d = checkpoint_dir(run_dir)
    if not d.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in d.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def latest_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    cps = list_checkpoints(run_dir)
    return cps[-1] if cps else None


def resolve_checkpoint(run_dir: str | os.PathLike, which: str | os.PathLike | None = None) -> Path | None:
    """The checkpoint ``which`` names in ``run_dir``: ``None`` the latest (``None`` if there is
    none), ``"best"`` ``checkpoints/best.pt`` (the ``train.keep_best`` copy), else that path."""
    if which is None:
        return latest_checkpoint(run_dir)
    if str(which) == "best":
        return checkpoint_dir(run_dir) / BEST_NAME
    return Path(which)


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike) -> Path:
    """``torch.save`` to a temporary file in the same folder, fsync, then rename onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save({"format": FORMAT, "version": VERSION, **state}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def prune_checkpoints(run_dir: str | os.PathLike, keep_last: int) -> list[Path]:
    """Delete all but the newest ``keep_last`` checkpoints; returns the deleted paths."""
    cps = list_checkpoints(run_dir)
    gone = cps[:-keep_last] if keep_last > 0 else []
    for p in gone:
        p.unlink(missing_ok=True)
    return gone


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint (tensors on CPU); :class:`WeightsError` if it is missing or not one."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise WeightsError(f"cannot read checkpoint {path}: {type(e).__name__}: {str(e).splitlines()[0]}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise WeightsError(f"{path} is not a neurocodec training checkpoint")
    if state.get("version", 0) > VERSION:
        raise WeightsError(f"{path} was written by a newer neurocodec (checkpoint version {state['version']})")
    return state


@dataclass
class LoadedModel:
    """A model rebuilt from a checkpoint alone: the module (weights loaded, eval mode), its recipe
    and the checkpoint's step."""

    model: Any
    recipe: Recipe
    step: int


def load_model(path: str | os.PathLike) -> LoadedModel:
    """Rebuild the model of a checkpoint from its stored recipe and load its weights (strict)."""
    state = load_checkpoint(path)
    recipe = recipe_from_dict(state["recipe"])
    model = build_model(recipe)
    try:
        model.load_state_dict(state["model"], strict=True)
    except RuntimeError as e:
        raise WeightsError(f"checkpoint {path} does not match recipe '{recipe.name}': {str(e).splitlines()[0]}") from None
    model.eval()
    return LoadedModel(model, recipe, int(state["step"]))


# -- random states ---------------------------------------------------------------------------

def capture_rng() -> dict[str, Any]:
    """Random states of Python, NumPy and torch (CPU and CUDA) in ``weights_only``-safe types."""
    np_state = np.random.get_state()
    out = {
        "python": random.getstate(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), int(np_state[2]),
                  int(np_state[3]), float(np_state[4])],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def restore_rng(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng`."""
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    name, key, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, key.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
