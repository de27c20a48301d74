"""Per-frame model output variable (MOV) precursors of PEAQ basic (ITU-R BS.1387-1, section 4).

Each function takes ``(frames, ...)`` arrays for all frames and returns one value (or a
few) per frame; :mod:`.averaging` turns them into the 11 MOVs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .ear_model import FRAME_SIZE, HOP_SIZE, critical_bands, group_into_bands, internal_noise
from .patterns import ModulationPatterns

#: bins of the bandwidth search at 48 kHz / 2048 (section 4.4): 921 ~ 21.6 kHz, 346 ~ 8.1 kHz
BW_ZERO_BIN = 921
BW_MIN_REF_BIN = 346
#: EHS correlation length (lags and window) for 2048-point frames (section 4.8)
EHS_MAXLAG = 256
#: frame-energy threshold of the EHS, in 16-bit units squared (section 4.8 / 5.2)
EHS_ENERGY_THRESHOLD = 8000.0 / 32768.0 ** 2


@dataclass
class Bandwidths:
    """Per-frame bandwidth bins; ``valid`` marks frames with ``BwRef > 346`` (section 4.4)."""

    ref: np.ndarray
    test: np.ndarray
    valid: np.ndarray


def bandwidth(power_ref: np.ndarray, power_test: np.ndarray) -> Bandwidths:
    """Bandwidth of reference and test per frame from level-scaled power spectra (section 4.4).

    ``ZeroThreshold`` is the largest test power in bins 921..1023.  ``BwRef`` is one more
    than the highest bin below 921 where the reference exceeds it by 10 dB; ``BwTest`` is
    one more than the highest bin below ``BwRef`` where the test is at least 5 dB above it
    (0 when none).  Only frames with ``BwRef > 346`` enter the averages.
    """
    zero = power_test[:, BW_ZERO_BIN:FRAME_SIZE // 2].max(axis=1)
    ref_hit = power_ref[:, :BW_ZERO_BIN] > 10.0 * zero[:, None]
    bw_ref = np.where(ref_hit.any(axis=1), BW_ZERO_BIN - np.argmax(ref_hit[:, ::-1], axis=1), 0)
    k = np.arange(BW_ZERO_BIN)[None, :]
    test_hit = (power_test[:, :BW_ZERO_BIN] >= 10.0 ** 0.5 * zero[:, None]) & (k < bw_ref[:, None])
    bw_test = np.where(test_hit.any(axis=1), BW_ZERO_BIN - np.argmax(test_hit[:, ::-1], axis=1), 0)
    return Bandwidths(ref=bw_ref.astype(np.float64), test=bw_test.astype(np.float64),
                      valid=bw_ref > BW_MIN_REF_BIN)


def masking_offset() -> np.ndarray:
    """Masking offset ``m[k]`` as a power ratio: 3 dB up to 12 Bark, ``0.25 k res`` dB above (eq. 25)."""
    bands = critical_bands()
    z = np.arange(bands.count) * bands.resolution
    return 10.0 ** (np.where(z <= 12.0, 3.0, 0.25 * z) / 10.0)


@dataclass
class NoiseToMask:
    """Per-frame mean and maximum over bands of the linear noise-to-mask ratio."""

    mean: np.ndarray
    max: np.ndarray


def noise_to_mask(weighted_ref: np.ndarray, weighted_test: np.ndarray, excitation_ref: np.ndarray) -> NoiseToMask:
    """Noise-to-mask ratios for Total NMR and RelDistFrames (sections 4.5, 4.6; eqs. 26, 70).

    The noise spectrum is ``(|Fe,ref| - |Fe,test|)^2`` of the ear-weighted spectra, grouped
    into bands like the signals; the mask is the reference excitation divided by the
    masking offset ``m[k]``.
    """
    noise = (np.sqrt(weighted_ref) - np.sqrt(weighted_test)) ** 2
    noise_bands = group_into_bands(noise)
    mask = excitation_ref / masking_offset()[None, :]
    ratio = noise_bands / mask
    return NoiseToMask(mean=ratio.mean(axis=1), max=ratio.max(axis=1))


@dataclass
class ModulationDifference:
    """Per-frame ``ModDiff1``, ``ModDiff2`` and the temporal weights of section 4.2."""

    diff1: np.ndarray
    diff2: np.ndarray
    weight: np.ndarray


def modulation_difference(ref: ModulationPatterns, test: ModulationPatterns) -> ModulationDifference:
    """Modulation differences (section 4.2, eqs. 63-65).

    ``ModDiff = 100/Z sum_k w |Mod_test - Mod_ref| / (offset + Mod_ref)`` with
    ``offset = 1, w = 1`` (ModDiff1) and ``offset = 0.01, w = 1 or negWt = 0.1 when the
    test modulation is below the reference`` (ModDiff2).  The frame weight is
    ``sum_k Ebar_ref / (Ebar_ref + levWt E_Thres^0.3)`` with ``levWt = 100``.
    """
    bands = critical_bands()
    m_ref, m_test = ref.modulation, test.modulation
    diff = np.abs(m_test - m_ref)
    d1 = 100.0 / bands.count * (diff / (1.0 + m_ref)).sum(axis=1)
    w = np.where(m_test >= m_ref, 1.0, 0.1)
    d2 = 100.0 / bands.count * (w * diff / (0.01 + m_ref)).sum(axis=1)
    thr = internal_noise(bands.centre)[None, :] ** 0.3
    avg = ref.average_loudness
    weight = (avg / (avg + 100.0 * thr)).sum(axis=1)
    return ModulationDifference(diff1=d1, diff2=d2, weight=weight)


def noise_loudness(ref: ModulationPatterns, test: ModulationPatterns,
                   adapted_ref: np.ndarray, adapted_test: np.ndarray) -> np.ndarray:
    """Noise loudness per frame (section 4.3, eqs. 66-68), basic-version constants.

    ``NL = 24/Z sum_k (E_Thres / s_test)^0.23 [(1 + max(s_test E_test - s_ref E_ref, 0) /
    (E_Thres + s_ref E_ref beta))^0.23 - 1]`` with ``s = 0.15 Mod + 0.5``,
    ``beta = exp(-1.5 (E_test - E_ref) / E_ref)`` on the adapted patterns, clipped at 0.
    """
    bands = critical_bands()
    thr = internal_noise(bands.centre)[None, :]
    s_ref = 0.15 * ref.modulation + 0.5
    s_test = 0.15 * test.modulation + 0.5
    beta = np.exp(-1.5 * (adapted_test - adapted_ref) / adapted_ref)
    num = np.maximum(s_test * adapted_test - s_ref * adapted_ref, 0.0)
    nl = (thr / s_test) ** 0.23 * ((1.0 + num / (thr + s_ref * adapted_ref * beta)) ** 0.23 - 1.0)
    return np.maximum(24.0 / bands.count * nl.sum(axis=1), 0.0)


@dataclass
class Detection:
    """Per-frame probability of detection ``Pc`` and number of steps above threshold ``Qc``."""

    probability: np.ndarray
    steps: np.ndarray


def detection_probability(excitation_ref: np.ndarray, excitation_test: np.ndarray) -> Detection:
    """Probability of detection and steps above threshold (section 4.7, eqs. 73-78), mono.

    Per band with levels in dB: ``L = 0.3 max(Lref, Ltest) + 0.7 Ltest``; the detection
    step size ``s(L)`` is the Recommendation's polynomial (``1e30`` for ``L <= 0``);
    ``e = Lref - Ltest``, ``b = 4`` if ``e > 0`` else ``6``;
    ``pc = 1 - 10^(-(a e)^b)`` with ``a = 10^(log10(log10 2)/b) / s``, i.e.
    ``1 - 2^(-(e/s)^b)``; ``qc = |trunc(e)| / s``.  Per frame ``Pc = 1 - prod(1 - pc)``
    and ``Qc = sum qc``.
    """
    l_ref = 10.0 * np.log10(excitation_ref)
    l_test = 10.0 * np.log10(excitation_test)
    level = 0.3 * np.maximum(l_ref, l_test) + 0.7 * l_test
    safe = np.where(level > 0, level, 1.0)
    step = (5.95072 * (6.39468 / safe) ** 1.71332 + 9.01033e-11 * safe ** 4 + 5.05622e-6 * safe ** 3
            - 0.00102438 * safe ** 2 + 0.0550197 * safe - 0.198719)
    step = np.where(level > 0, step, 1e30)
    e = l_ref - l_test
    b = np.where(e > 0, 4.0, 6.0)
    pc = 1.0 - 0.5 ** ((e / step) ** b)
    qc = np.abs(np.trunc(e)) / step
    prob = 1.0 - np.prod(1.0 - pc, axis=1)
    return Detection(probability=prob, steps=qc.sum(axis=1))


def _hann_correlation_window() -> np.ndarray:
    n = np.arange(EHS_MAXLAG)
    return np.sqrt(8.0 / 3.0) * 0.5 * (1.0 - np.cos(2.0 * np.pi * n / (EHS_MAXLAG - 1))) / EHS_MAXLAG


def error_harmonic_structure(weighted_ref: np.ndarray, weighted_test: np.ndarray,
                             frames_ref: np.ndarray, frames_test: np.ndarray) -> np.ndarray:
    """Error harmonic structure per frame (section 4.8); ``-1`` marks frames not counted.

    ``D[k] = ln(|Fe,test[k]|^2 / |Fe,ref[k]|^2)`` for ``k < 2*256 - 1``; the normalised
    correlation ``C[l] = sum_i D[i] D[i+l] / sqrt(sum_i D[i]^2 sum_i D[i+l]^2)`` over 256
    lags is mean-removed, Hann-windowed and transformed; the EHS of the frame is the
    largest power-spectrum value that rises above its predecessor.  Frames whose second
    half has energy below 8000 (16-bit units) in both signals are not counted.
    """
    nl = EHS_MAXLAG
    kmax = 2 * nl - 1
    wr, wt = weighted_ref[:, :kmax], weighted_test[:, :kmax]
    both_zero = (wr == 0) & (wt == 0)
    tiny = np.finfo(np.float64).tiny
    d = np.where(both_zero, 0.0, np.log(np.maximum(wt, tiny)) - np.log(np.maximum(wr, tiny)))
    nfft = 2 * nl
    d0 = np.fft.rfft(d[:, :nl], nfft, axis=1)
    d1 = np.fft.rfft(d, nfft, axis=1)
    corr = np.fft.irfft(np.conj(d0) * d1, nfft, axis=1)[:, :nl]
    sq = d ** 2
    csum = np.concatenate([np.zeros((len(d), 1)), np.cumsum(sq, axis=1)], axis=1)
    lag = np.arange(nl)
    energy_l = csum[:, lag + nl] - csum[:, lag]  # sum_{i=l}^{l+nl-1} D[i]^2
    denom = energy_l[:, :1] * energy_l
    with np.errstate(invalid="ignore", divide="ignore"):
        cn = np.where(denom > 0, corr / np.sqrt(np.where(denom > 0, denom, 1.0)), 1.0)
    cn[:, 0] = 1.0
    cw = _hann_correlation_window()[None, :] * (cn - cn.mean(axis=1, keepdims=True))
    spec = np.fft.rfft(cw, nl, axis=1)
    c2 = spec.real ** 2 + spec.imag ** 2
    rising = c2[:, 1:] > c2[:, :-1]
    ehs = np.where(rising, c2[:, 1:], 0.0).max(axis=1)
    half = slice(HOP_SIZE, FRAME_SIZE)
    quiet = ((frames_ref[:, half] ** 2).sum(axis=1) < EHS_ENERGY_THRESHOLD) & \
            ((frames_test[:, half] ** 2).sum(axis=1) < EHS_ENERGY_THRESHOLD)
    return np.where(quiet, -1.0, ehs)

