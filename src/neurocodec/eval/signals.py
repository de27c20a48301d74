"""Input checks and small signal helpers shared by the metric modules (eval layer)."""

from __future__ import annotations

import math
import warnings

import numpy as np
from .. import audio as audio_io

from ..errors import AudioError


class MetricWarning(UserWarning):
    """A metric has no value for this input (e.g. a silent reference) and returned NaN."""


def undefined(reason: str) -> float:
    """Warn with ``reason`` (:class:`MetricWarning`) and return NaN: the metric is undefined here."""
    warnings.warn(reason, MetricWarning, stacklevel=3)
    return math.nan


def as_mono(x, what: str) -> np.ndarray:
    """Validate a mono signal: 1-D (or ``(1, n)``), non-empty, finite -> float64 1-D array.

    Integer PCM is scaled to full scale 1.0; torch tensors are accepted."""
    arr = np.asarray(x.detach().cpu().numpy() if hasattr(x, "detach") else x)
    if arr.dtype.kind not in "fiu":
        raise AudioError(f"{what} must be numeric audio, got dtype {arr.dtype}")
    if arr.ndim == 2 and 1 in arr.shape:
        arr = arr.reshape(-1)
    if arr.ndim != 1:
        raise AudioError(f"{what} must be mono (1-D), got shape {tuple(arr.shape)}; downmix first")
    if arr.size == 0:
        raise AudioError(f"{what} is empty (0 samples)")
    if arr.dtype.kind in "iu":  # integer PCM: full scale -> 1.0, as neurocodec.audio.as_array
        info = np.iinfo(arr.dtype)
        arr = arr.astype(np.float64) / max(abs(info.min), info.max)
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise AudioError(f"{what} contains NaN or Inf samples")
    return arr


def as_pair(ref, deg) -> tuple[np.ndarray, np.ndarray]:
    """Validate an aligned (reference, decoded) pair: mono, finite, equal lengths (float64)."""
    ref = as_mono(ref, "reference")
    deg = as_mono(deg, "decoded signal")
    if ref.size != deg.size:
        raise AudioError(f"reference ({ref.size} samples) and decoded signal ({deg.size} samples) "
                         "differ in length; align them first (neurocodec.eval.align.align)")
    return ref, deg


def resample_mono(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Resample a 1-D signal to float64 (:func:`neurocodec.audio.resample`, soxr VHQ)."""
    if sr_in == sr_out:
        return x
    return audio_io.resample(np.asarray(x, dtype=np.float64)[None, :], sr_in, sr_out, dtype=np.float64)[0]
