"""Reading a learned codec's single-file checkpoint (safetensors tensors + JSON metadata).

The learned codecs write one safetensors file whose metadata names its ``format``, the
``codec_id`` and the ``config``; :func:`read_weights` checks all three before a model is built,
and :func:`check_state_match` turns a ``load_state_dict(strict=False)`` mismatch into one line.
:func:`state_digest` is the hash of a model state that stream headers carry
(``CodecModel.weights_digest``).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Mapping

from ..errors import WeightsError

if TYPE_CHECKING:
    import torch


def read_weights(path: str | Path, fmt: str, codec_id: str, kind: str) -> tuple[dict, dict[str, str]]:
    """``(state, metadata)`` of the checkpoint ``path``; :class:`WeightsError` (one line) when the
    file is missing, not safetensors, not a ``fmt`` checkpoint with a config (``kind`` names it in
    the message), or made for another codec than ``codec_id``."""
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load

    p = Path(path)
    if not p.is_file():
        raise WeightsError(f"checkpoint not found: {p}")
    try:
        with safe_open(str(p), framework="pt") as f:
            meta = f.metadata() or {}
        state = load(p.read_bytes())
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"{p} is not a valid safetensors checkpoint: {exc}") from None
    if meta.get("format") != fmt or "config" not in meta:
        raise WeightsError(f"{p} is not a neurocodec {kind} checkpoint")
    if meta.get("codec_id") != codec_id:
        raise WeightsError(f"{p} holds a '{meta.get('codec_id')}' model, not '{codec_id}'")
    return state, meta


def check_state_match(path: str | Path, missing: Iterable[str], unexpected: Iterable[str]) -> None:
    """Raise :class:`WeightsError` when loading left parameters ``missing`` or ``unexpected``."""
    missing, unexpected = sorted(missing), sorted(unexpected)
    if missing or unexpected:
        raise WeightsError(f"{path} does not match its config (missing {missing[:5]}, "
                           f"unexpected {unexpected[:5]})")


def state_digest(state: Mapping[str, "torch.Tensor"], skip: Callable[[str], bool] = lambda name: False):
    """A running SHA-256 (``hashlib`` object, so that a codec can add more) over the tensors of
    ``state`` in name order, each as ``name:dtype:shape;`` and its raw bytes; names for which
    ``skip`` is true (training state) are left out."""
    h = hashlib.sha256()
    for name, t in sorted(state.items()):
        if skip(name):
            continue
        t = t.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        h.update(t.numpy().tobytes())
    return h
