"""Reading a learned codec's single-file checkpoint (safetensors tensors + JSON metadata).

The learned codecs write one safetensors file whose metadata names its ``format``, the
``codec_id`` and the ``config``; :func:`read_weights` checks all three before a model is built,
and :func:`check_state_match` turns a ``load_state_dict(strict=False)`` mismatch into one line.
:func:`state_digest` is the hash of a model state that stream headers carry
(``CodecModel.weights_digest``).  :func:`compact_integers` stores integer tensors (entropy
tables: counts, CDFs, code lengths) in the narrowest integer type that holds their values, and
:func:`restore_integers` gives them back their own type on load, so the model state (and its
digest) is the same as before and the file smaller: a CQ point's LSP pair tables, 65,536 int64
counts and a 65,537-entry int64 CDF, take 0.4 MB instead of 1.1 MB.  :func:`int8_rows` stores
large float tensors as int8 with one scale per row (first axis), and :func:`restore_int8_rows`
(called by every reader here: :func:`read_format`, :func:`load_safetensors`) turns them back into
floats: a weight-normed layer's direction ``v`` loses nothing but rounding, since ``v / ||v||`` is
taken per row, and an EnCodec network takes half the space of float16.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Mapping

from ..errors import WeightsError

if TYPE_CHECKING:
    import torch


def read_weights(path: str | Path, fmt: str, codec_id: str, kind: str) -> tuple[dict, dict[str, str]]:
    """``(state, metadata)`` of the checkpoint ``path``; :class:`WeightsError` (one line) when the
    file is missing, not safetensors, not a ``fmt`` checkpoint with a config (``kind`` names it in
    the message), or made for another codec than ``codec_id``."""
    p = Path(path)
    state, meta = read_format(p, fmt, f"a neurocodec {kind} checkpoint")
    if "config" not in meta:
        raise WeightsError(f"{p} is not a neurocodec {kind} checkpoint (it has no config)")
    if meta.get("codec_id") != codec_id:
        raise WeightsError(f"{p} holds a '{meta.get('codec_id')}' model, not '{codec_id}'")
    return state, meta


#: metadata key of :func:`compact_integers`: JSON ``{tensor name: its dtype in the model}``
INT_DTYPES_KEY = "int_dtypes"


def compact_integers(state: Mapping[str, "torch.Tensor"]) -> tuple[dict, str]:
    """``(state with every signed/unsigned integer tensor cast to the narrowest of uint8, int16,
    int32 that holds all its values, JSON map of the cast tensors' own dtypes)``; other tensors
    (and integer tensors that need 64 bits) are kept as they are."""
    import torch

    out, cast = {}, {}
    for name, t in state.items():
        if t.dtype in (torch.int64, torch.int32, torch.int16) and t.numel():
            lo, hi = int(t.min()), int(t.max())
            for narrow in (torch.uint8, torch.int16, torch.int32):
                info = torch.iinfo(narrow)
                if narrow.itemsize < t.dtype.itemsize and info.min <= lo and hi <= info.max:
                    out[name] = t.to(narrow)
                    cast[name] = str(t.dtype).removeprefix("torch.")
                    break
            else:
                out[name] = t
        else:
            out[name] = t
    return out, json.dumps(cast, sort_keys=True)


def restore_integers(state: dict, meta: Mapping[str, str]) -> dict:
    """Undo :func:`compact_integers` on a loaded ``state`` (in place and returned), from the
    checkpoint's metadata; a file written without it is returned unchanged.  A malformed map is
    a :class:`WeightsError`."""
    try:
        for name, target in _dtype_map(meta, INT_DTYPES_KEY).items():
            if target.is_floating_point or name not in state:
                raise ValueError(name)
            state[name] = state[name].to(target)
    except (ValueError, TypeError, AttributeError) as exc:
        raise WeightsError(f"malformed integer-type map in the checkpoint ({exc})") from None
    return state


def _dtype_map(meta: Mapping[str, str], key: str) -> dict:
    """The JSON map ``{tensor name: torch dtype name}`` under ``key`` of ``meta`` as torch dtypes
    (empty when absent); ValueError, TypeError or AttributeError when malformed."""
    import torch

    out = {}
    for name, dtype in json.loads(meta.get(key) or "{}").items():
        target = getattr(torch, dtype)
        if not isinstance(target, torch.dtype):
            raise ValueError(name)
        out[name] = target
    return out


#: metadata key of :func:`int8_rows`: JSON ``{tensor name: its dtype in the model}``
INT8_ROWS_KEY = "int8_rows"
#: suffix of the tensor that holds the per-row scales of an int8-stored tensor
INT8_SCALE_SUFFIX = ".int8_scale"


def int8_rows(state: Mapping[str, "torch.Tensor"], min_numel: int = 4096,
              select: Callable[[str], bool] = lambda name: True) -> tuple[dict, str]:
    """``(state with every selected floating-point tensor of at least two axes and ``min_numel``
    elements stored as int8 rows, JSON map of those tensors' own dtypes)``: row ``i`` (first axis)
    becomes ``round(t[i] / s[i])`` with ``s[i] = max|t[i]| / 127`` (1 for an all-zero row), and
    ``s`` is stored as float32 under ``name + INT8_SCALE_SUFFIX``; other tensors are unchanged."""
    import torch

    out, kinds = {}, {}
    for name, t in state.items():
        if t.is_floating_point() and t.dim() >= 2 and t.numel() >= min_numel and select(name):
            rows = t.detach().to(torch.float32).reshape(t.shape[0], -1)
            scale = rows.abs().amax(dim=1) / 127
            scale = torch.where(scale > 0, scale, torch.ones_like(scale))
            out[name] = torch.round(rows / scale[:, None]).clamp_(-127, 127).to(torch.int8).reshape(t.shape)
            out[name + INT8_SCALE_SUFFIX] = scale.contiguous()
            kinds[name] = str(t.dtype).removeprefix("torch.")
        else:
            out[name] = t
    return out, json.dumps(kinds, sort_keys=True)


def restore_int8_rows(state: dict, meta: Mapping[str, str]) -> dict:
    """Undo :func:`int8_rows` on a loaded ``state`` (in place and returned): each listed tensor
    becomes ``q * scale`` per row, in its recorded dtype, and the scale tensors go; a file written
    without int8 rows is returned unchanged, a malformed one is a :class:`WeightsError`."""
    import torch

    try:
        for name, target in _dtype_map(meta, INT8_ROWS_KEY).items():
            q, scale = state[name], state.pop(name + INT8_SCALE_SUFFIX)
            if not target.is_floating_point or q.dtype != torch.int8 or scale.shape != (q.shape[0],):
                raise ValueError(name)
            state[name] = (q.to(torch.float32).reshape(q.shape[0], -1) * scale[:, None].to(torch.float32)) \
                .reshape(q.shape).to(target)
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        raise WeightsError(f"malformed int8 rows in the checkpoint ({exc})") from None
    return state


def load_safetensors(path: str | Path) -> tuple[dict, dict[str, str]]:
    """``(state, metadata)`` of any safetensors file, int8 rows restored (:func:`restore_int8_rows`);
    a missing or unreadable file is a :class:`WeightsError` (one line)."""
    from safetensors import safe_open

    p = Path(path)
    if not p.is_file():
        raise WeightsError(f"checkpoint not found: {p}")
    try:
        with safe_open(str(p), framework="pt") as f:
            meta = dict(f.metadata() or {})
            state = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # noqa: BLE001  (safetensors raises several types for a bad file)
        raise WeightsError(f"{p} is not a safetensors checkpoint: {str(e).splitlines()[0]}") from None
    return restore_int8_rows(state, meta), meta


def read_format(path: str | Path, fmt: str, what: str) -> tuple[dict, dict[str, str]]:
    """``(state, metadata)`` of the safetensors checkpoint ``path`` whose metadata ``format`` is
    ``fmt``; :class:`WeightsError` (one line, ``what`` names the expected kind) when the file is
    missing, not safetensors, or of another format."""
    p = Path(path)
    state, meta = load_safetensors(p)
    if meta.get("format") != fmt:
        raise WeightsError(f"{p} is not {what} of this package (format {meta.get('format')!r})")
    return state, meta


def dataclass_from_json(cls, raw: Mapping):
    """``cls(**raw)`` for the fields of the dataclass ``cls`` present in ``raw`` (a JSON config:
    lists become tuples, unknown keys are ignored)."""
    from dataclasses import fields

    return cls(**{fl.name: (tuple(raw[fl.name]) if isinstance(raw[fl.name], list) else raw[fl.name])
                  for fl in fields(cls) if fl.name in raw})


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
