"""Pre-processing of excitation patterns (ITU-R BS.1387-1, section 3), basic version.

* level and pattern adaptation of reference and test excitation (section 3.1);
* modulation patterns from the unsmeared excitation (section 3.2);
* total loudness, used for the loudness threshold of the noise-loudness MOV (section 3.3).

All functions work on ``(frames, bands)`` arrays from :mod:`.ear_model`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .ear_model import (
    HOP_SIZE, SAMPLE_RATE, critical_bands, recursive_average, smoothing_coefficients,
)

#: time constants of the adaptation and modulation filters in seconds (sections 3.1, 3.2)
ADAPT_TAU_MIN = 0.008
ADAPT_TAU_100 = 0.050
#: loudness scaling constant of the FFT ear model (section 3.3)
LOUDNESS_SCALE = 1.07664
LOUDNESS_E0 = 1e4


@dataclass
class AdaptedPatterns:
    """Level- and pattern-adapted excitation patterns ``E_P,Ref`` and ``E_P,Test``."""

    ref: np.ndarray
    test: np.ndarray


def _band_window_sum(x: np.ndarray, below: int, above: int) -> np.ndarray:
    """Mean of ``x[:, k-below .. k+above]`` per band, truncated at the edges (eq. 51)."""
    z = x.shape[1]
    csum = np.concatenate([np.zeros((x.shape[0], 1)), np.cumsum(x, axis=1)], axis=1)
    k = np.arange(z)
    lo = np.maximum(k - below, 0)
    hi = np.minimum(k + above, z - 1)
    return (csum[:, hi + 1] - csum[:, lo]) / (hi - lo + 1)


def adapt_patterns(e_ref: np.ndarray, e_test: np.ndarray) -> AdaptedPatterns:
    """Level and pattern adaptation of excitation patterns (section 3.1, eqs. 42-53).

    Level: both patterns are smoothed over time (``P``); the correction
    ``C_L = (sum_k sqrt(P_test P_ref) / sum_k P_test)^2`` scales down the louder signal.
    Pattern: per band, ``R_num = sum a^i E_test E_ref`` and ``R_den = sum a^i E_ref^2``
    give ratios that attenuate whichever signal has more energy in that band
    (``R_ref = 1, R_test = R_den/R_num`` if ``R_num >= R_den``, else the reverse); the
    ratios are averaged over 3 bands below and 4 above, smoothed over time and applied.
    """
    bands = critical_bands()
    a = smoothing_coefficients(bands.centre, ADAPT_TAU_MIN, ADAPT_TAU_100)
    p_ref = recursive_average(e_ref, a)
    p_test = recursive_average(e_test, a)
    corr = (np.sqrt(p_ref * p_test).sum(axis=1) / p_test.sum(axis=1)) ** 2
    ref_louder = corr > 1.0
    el_ref = np.where(ref_louder[:, None], e_ref / corr[:, None], e_ref)
    el_test = np.where(ref_louder[:, None], e_test, e_test * corr[:, None])

    r_num = recursive_average(el_test * el_ref, a, gain=1.0)
    r_den = recursive_average(el_ref * el_ref, a, gain=1.0)
    # Both are strictly positive (excitation includes the internal noise), so the
    # special case of a zero denominator in the Recommendation never arises.
    test_larger = r_num >= r_den
    r_ref = np.where(test_larger, 1.0, r_num / r_den)
    r_test = np.where(test_larger, r_den / r_num, 1.0)
    below, above = 3, 4  # M1, M2 for 109 bands
    pc_ref = recursive_average(_band_window_sum(r_ref, below, above), a)
    pc_test = recursive_average(_band_window_sum(r_test, below, above), a)
    return AdaptedPatterns(ref=el_ref * pc_ref, test=el_test * pc_test)


@dataclass
class ModulationPatterns:
    """Modulation ``Mod[k,n]`` and smoothed loudness ``Ebar[k,n]`` of one signal (section 3.2)."""

    modulation: np.ndarray
    average_loudness: np.ndarray


def modulation_patterns(unsmeared: np.ndarray) -> ModulationPatterns:
    """Modulation patterns from unsmeared excitation ``E2`` (section 3.2, eqs. 54-57).

    ``Eder[n] = a Eder[n-1] + (1-a) (fs/hop) |E2[n]^0.3 - E2[n-1]^0.3|`` and
    ``Ebar[n] = a Ebar[n-1] + (1-a) E2[n]^0.3``; ``Mod = Eder / (1 + Ebar / 0.3)``.
    The loudness of the frame before the first is taken as zero.
    """
    bands = critical_bands()
    a = smoothing_coefficients(bands.centre, ADAPT_TAU_MIN, ADAPT_TAU_100)
    loud = unsmeared ** 0.3
    prev = np.vstack([np.zeros((1, loud.shape[1])), loud[:-1]])
    deriv = recursive_average((SAMPLE_RATE / HOP_SIZE) * np.abs(loud - prev), a)
    avg = recursive_average(loud, a)
    return ModulationPatterns(modulation=deriv / (1.0 + avg / 0.3), average_loudness=avg)


def excitation_threshold(fc: np.ndarray) -> np.ndarray:
    """Threshold excitation ``E_Thres = 10^(0.364 (f/kHz)^-0.8)`` (section 3.3, eq. 60)."""
    return 10.0 ** (0.364 * (np.asarray(fc, dtype=np.float64) / 1000.0) ** -0.8)


def threshold_index(fc: np.ndarray) -> np.ndarray:
    """Threshold index ``s = 10^((-2 - 2.05 atan(f/4 kHz) - 0.75 atan((f/1.6 kHz)^2)) / 10)`` (eq. 61)."""
    f = np.asarray(fc, dtype=np.float64)
    return 10.0 ** (0.1 * (-2.0 - 2.05 * np.arctan(f / 4000.0) - 0.75 * np.arctan((f / 1600.0) ** 2)))


def total_loudness(excitation: np.ndarray) -> np.ndarray:
    """Total loudness per frame in sone (section 3.3, eqs. 58-59).

    ``N[k] = const (E_Thres / (s E0))^0.23 ((1 - s + s E / E_Thres)^0.23 - 1)`` with
    ``const = 1.07664``, ``E0 = 10^4``; ``Ntot = 24/Z sum_k max(N[k], 0)``.
    """
    bands = critical_bands()
    et = excitation_threshold(bands.centre)
    s = threshold_index(bands.centre)
    factor = LOUDNESS_SCALE * (et / (LOUDNESS_E0 * s)) ** 0.23
    specific = factor * ((1.0 - s + s * excitation / et) ** 0.23 - 1.0)
    return (24.0 / bands.count) * np.maximum(specific, 0.0).sum(axis=1)
