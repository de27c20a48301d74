"""Delay estimation and compensation between a reference and a decoded signal (eval layer).

Classic codecs (Opus, AMR-WB, MDCT coders with look-ahead) delay their output; intrusive
metrics must compare time-aligned signals.  The delay is the lag that maximises the
cross-correlation ``c[k] = sum_n deg[n + k] * ref[n]`` (computed with FFTs), searched within
``+-max_delay_s``; a positive delay means the decoded signal lags the reference.  Integer
lags only: sub-sample delays are not estimated.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal

from ..errors import AudioError
from .signals import as_mono


@dataclass
class Aligned:
    """Reference and decoded signal cut to their common span after delay compensation.

    ``deg[n]`` corresponds to ``ref[n]``; ``delay_samples`` is the decoded signal's lag that
    was removed (positive: the decoder output was late).
    """

    delay_samples: int
    sample_rate: int
    ref: np.ndarray
    deg: np.ndarray

    @property
    def delay_s(self) -> float:
        return self.delay_samples / self.sample_rate


def find_delay(ref, deg, sr: int, max_delay_s: float = 0.5) -> int:
    """Lag of ``deg`` relative to ``ref`` in samples (positive: ``deg`` lags), |lag| <= max_delay_s.

    Maximiser of the FFT cross-correlation ``sum_n deg[n + k] ref[n]`` over integer ``k``.
    Returns 0 when either signal is silent (the correlation carries no information).
    """
    ref = as_mono(ref, "reference")
    deg = as_mono(deg, "decoded signal")
    if sr <= 0:
        raise AudioError(f"sample rate must be positive, got {sr}")
    if max_delay_s < 0:
        raise AudioError(f"max_delay_s must be >= 0, got {max_delay_s}")
    if not np.any(ref) or not np.any(deg):
        return 0
    max_lag = int(round(max_delay_s * sr))
    corr = signal.correlate(deg, ref, mode="full", method="fft")
    lags = signal.correlation_lags(deg.size, ref.size, mode="full")
    keep = np.abs(lags) <= max_lag
    corr, lags = corr[keep], lags[keep]
    # ties (e.g. periodic signals) resolve to the smallest |lag|
    best = np.flatnonzero(corr >= corr.max() - 1e-12 * abs(corr.max()))
    return int(lags[best[np.argmin(np.abs(lags[best]))]])


def align(ref, deg, sr: int, max_delay_s: float = 0.5) -> Aligned:
    """Compensate the delay found by :func:`find_delay` and cut both signals to their common span."""
    ref = as_mono(ref, "reference")
    deg = as_mono(deg, "decoded signal")
    delay = find_delay(ref, deg, sr, max_delay_s)
    if delay >= 0:
        deg = deg[delay:]
    else:
        ref = ref[-delay:]
    n = min(ref.size, deg.size)
    if n == 0:
        raise AudioError(f"reference and decoded signal do not overlap after a delay of {delay} samples")
    return Aligned(delay_samples=delay, sample_rate=int(sr), ref=ref[:n], deg=deg[:n])

