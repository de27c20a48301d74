"""Metric adapters for PEAQ and the 2f-model (implemented in :mod:`neurocodec.eval.peaq`).

``peaq_odg`` and ``twof`` both come out of one PEAQ run (ITU-R BS.1387-1 basic version; the
2f-model of Kastner & Herre 2019 maps two of its MOVs to a MUSHRA-like 0-100 score), so the
last result is cached: asking for both costs a single analysis.
"""

from __future__ import annotations

import hashlib
import threading

from .signals import as_pair

_cache: dict[str, object] = {}
_lock = threading.Lock()


def _peaq_result(ref, deg, sr: int):
    from .peaq import peaq  # imported on first use

    ref, deg = as_pair(ref, deg)
    key = hashlib.sha1(ref.tobytes() + deg.tobytes() + str(int(sr)).encode()).hexdigest()
    with _lock:
        if key in _cache:
            return _cache[key]
    result = peaq(ref, deg, int(sr))
    with _lock:
        _cache.clear()
        _cache[key] = result
    return result


def peaq_odg(ref, deg, sr: int) -> float:
    """PEAQ basic-version objective difference grade (0 imperceptible ... -4 very annoying)."""
    return float(_peaq_result(ref, deg, sr).odg)


def twof(ref, deg, sr: int) -> float:
    """2f-model score (0-100, higher is better) from the PEAQ MOVs AvgModDiff1 and ADB."""
    return float(_peaq_result(ref, deg, sr).twof)


__all__ = ["peaq_odg", "twof"]
