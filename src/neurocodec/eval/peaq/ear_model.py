"""FFT-based peripheral ear model of PEAQ, basic version (ITU-R BS.1387-1, section 2.1).

Signals are processed at 48 kHz in 2048-sample frames with 50 % overlap.  Each frame is
Hann-windowed, transformed, scaled to the playback level (a full-scale sine is 92 dB SPL),
weighted by the outer/middle-ear transfer function, grouped into 109 critical bands of
0.25 Bark, raised by the internal noise, spread over frequency with level-dependent slopes
and finally smeared over time.  The outputs are the (un)weighted power spectra and the
excitation patterns before (``E2`` in the Recommendation) and after time-domain spreading
(``E``), for all frames at once.

Equation numbers refer to BS.1387-1 as numbered in P. Kabal, "An Examination and
Interpretation of ITU-R BS.1387: Perceptual Evaluation of Audio Quality", McGill TSP
report, 2003 ("Kabal" below) where the Recommendation itself leaves a detail implicit.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

SAMPLE_RATE = 48000
FRAME_SIZE = 2048
HOP_SIZE = FRAME_SIZE // 2
#: sound pressure level of a full-scale sine (section 2.1.3)
PLAYBACK_LEVEL_DB = 92.0
#: band resolution of the basic version in Bark (section 2.1.5)
BAND_RESOLUTION = 0.25
LOWEST_FREQUENCY = 80.0
HIGHEST_FREQUENCY = 18000.0
#: floor applied to grouped band energies (section 2.1.5 pseudo-code)
BAND_ENERGY_FLOOR = 1e-12
#: time constants of the time-domain spreading in seconds (section 2.1.8)
EAR_TAU_MIN = 0.008
EAR_TAU_100 = 0.030


def hz_to_bark(f: np.ndarray | float) -> np.ndarray:
    """Critical-band rate ``z = 7 asinh(f / 650 Hz)`` in Bark (section 2.1.5)."""
    return 7.0 * np.arcsinh(np.asarray(f, dtype=np.float64) / 650.0)


def bark_to_hz(z: np.ndarray | float) -> np.ndarray:
    """Inverse of :func:`hz_to_bark`: ``f = 650 Hz sinh(z / 7)``."""
    return 650.0 * np.sinh(np.asarray(z, dtype=np.float64) / 7.0)


@dataclass(frozen=True)
class CriticalBands:
    """Lower, centre and upper frequencies (Hz) of the critical bands (band table of section 2.1.5)."""

    lower: np.ndarray
    centre: np.ndarray
    upper: np.ndarray
    resolution: float

    @property
    def count(self) -> int:
        return len(self.centre)


def _frozen(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)  # cached tables are shared between calls
    return a


@lru_cache(maxsize=None)
def critical_bands(resolution: float = BAND_RESOLUTION) -> CriticalBands:
    """Bands of width ``resolution`` Bark from 80 Hz to 18 kHz (section 2.1.5).

    Band ``i`` spans ``[zL + i*res, min(zL + (i+1)*res, zU)]`` with ``zL = z(80 Hz)`` and
    ``zU = z(18 kHz)``; its centre is the Bark midpoint.  The basic version (0.25 Bark)
    has 109 bands; the last one is truncated at 18 kHz.
    """
    z_lo, z_hi = hz_to_bark(LOWEST_FREQUENCY), hz_to_bark(HIGHEST_FREQUENCY)
    count = int(np.ceil((z_hi - z_lo) / resolution - 1e-9))
    zl = z_lo + resolution * np.arange(count)
    zu = np.minimum(zl + resolution, z_hi)
    return CriticalBands(
        lower=_frozen(bark_to_hz(zl)), centre=_frozen(bark_to_hz((zl + zu) / 2)),
        upper=_frozen(bark_to_hz(zu)), resolution=float(resolution),
    )


def outer_middle_ear_db(f: np.ndarray | float) -> np.ndarray:
    """Outer and middle ear frequency response W(f) in dB (section 2.1.4, eq. 7).

    ``W(f) = -0.6 * 3.64 (f/kHz)^-0.8 + 6.5 exp(-0.6 (f/kHz - 3.3)^2) - 1e-3 (f/kHz)^3.6``;
    at 0 Hz the response is -inf dB (the DC bin is discarded).
    """
    f_khz = np.asarray(f, dtype=np.float64) / 1000.0
    out = np.full(f_khz.shape, -np.inf)
    pos = f_khz > 0
    fk = f_khz[pos]
    out[pos] = -0.6 * 3.64 * fk ** -0.8 + 6.5 * np.exp(-0.6 * (fk - 3.3) ** 2) - 1e-3 * fk ** 3.6
    return out


def internal_noise(fc: np.ndarray) -> np.ndarray:
    """Internal ear noise per band, ``10^(0.4 * 0.364 (fc/kHz)^-0.8)`` (section 2.1.6, eq. 13).

    This is also the threshold ``E_Thres`` used by the modulation-difference weights and
    the noise loudness (section 4.2/4.3)."""
    return 10.0 ** (0.4 * 0.364 * (np.asarray(fc, dtype=np.float64) / 1000.0) ** -0.8)


def smoothing_coefficients(fc: np.ndarray, tau_min: float, tau_100: float) -> np.ndarray:
    """First-order smoothing coefficient ``a = exp(-hop / (fs * tau))`` per band with
    ``tau = tau_min + (100 Hz / fc) (tau_100 - tau_min)`` (sections 2.1.8, 3.1, 3.2)."""
    tau = tau_min + 100.0 / np.asarray(fc, dtype=np.float64) * (tau_100 - tau_min)
    return np.exp(-HOP_SIZE / (SAMPLE_RATE * tau))


def recursive_average(x: np.ndarray, a: np.ndarray, gain: np.ndarray | float | None = None) -> np.ndarray:
    """``y[n] = a y[n-1] + g x[n]`` along axis 0 (frames), ``y[-1] = 0``, ``g = 1 - a`` by default.

    The first-order IIR smoothing used throughout BS.1387 (sections 2.1.8, 3.1, 3.2);
    ``a`` (and ``g``) broadcast against one frame ``x[n]``.
    """
    g = 1.0 - a if gain is None else gain
    y = np.empty_like(x, dtype=np.float64)
    state = np.zeros(x.shape[1:], dtype=np.float64)
    for n in range(x.shape[0]):
        state = a * state + g * x[n]
        y[n] = state
    return y


def hann_window(n: int = FRAME_SIZE) -> np.ndarray:
    """Scaled Hann window ``sqrt(8/3) * 0.5 (1 - cos(2 pi k / (N-1)))`` (section 2.1.2, eq. 3)."""
    k = np.arange(n)
    return np.sqrt(8.0 / 3.0) * 0.5 * (1.0 - np.cos(2.0 * np.pi * k / (n - 1)))


@lru_cache(maxsize=None)
def full_scale_norm() -> float:
    """``Norm`` of section 2.1.3: the largest DFT magnitude a full-scale 1019.5 Hz sine gives.

    The Recommendation defines it as the maximum spectral magnitude of such a sine; the
    value depends on the sine's phase relative to the frame, so the maximum over 64 phases
    is taken (this converges to Kabal's closed form ``sqrt(8/3) * 0.8497 (N-1)/4``).
    """
    n = np.arange(FRAME_SIZE)
    phases = np.linspace(0.0, 2.0 * np.pi, 64, endpoint=False)[:, None]
    frames = np.sin(2.0 * np.pi * 1019.5 / SAMPLE_RATE * n[None, :] + phases)
    return float(np.abs(np.fft.rfft(frames * hann_window(), axis=-1)).max())


def level_factor(playback_level_db: float = PLAYBACK_LEVEL_DB) -> float:
    """Power scale ``(10^(Lp/20) / Norm)^2`` so a full-scale sine peaks at ``Lp`` dB (section 2.1.3)."""
    return (10.0 ** (playback_level_db / 20.0) / full_scale_norm()) ** 2


@lru_cache(maxsize=None)
def band_grouping_matrix(resolution: float = BAND_RESOLUTION) -> np.ndarray:
    """``(bands, FRAME_SIZE/2 + 1)`` weights that group DFT bin powers into critical bands.

    Bin ``k`` covers ``[(k - 1/2), (k + 1/2)] * fs/N``; its weight in a band is the fraction
    of that interval inside ``[fl, fu]`` (section 2.1.5 pseudo-code).
    """
    bands = critical_bands(resolution)
    df = SAMPLE_RATE / FRAME_SIZE
    k = np.arange(FRAME_SIZE // 2 + 1)
    lo = np.maximum((k - 0.5)[None, :] * df, bands.lower[:, None])
    hi = np.minimum((k + 0.5)[None, :] * df, bands.upper[:, None])
    return _frozen(np.clip(hi - lo, 0.0, None) / df)


@lru_cache(maxsize=None)
def _band_grouping_sparse(resolution: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    weights = band_grouping_matrix(resolution)
    band, k = np.nonzero(weights)  # row-major: grouped by band, every band has a bin
    starts = np.flatnonzero(np.r_[True, band[1:] != band[:-1]])
    return k, weights[band, k], starts


def group_into_bands(power: np.ndarray, resolution: float = BAND_RESOLUTION) -> np.ndarray:
    """Band energies ``max(sum_k w[i,k] |F[k]|^2, 1e-12)`` for ``(frames, bins)`` power spectra."""
    k, w, starts = _band_grouping_sparse(resolution)
    return np.maximum(np.add.reduceat(power[:, k] * w, starts, axis=1), BAND_ENERGY_FLOOR)


def _geometric_sum(ratio: np.ndarray, terms: np.ndarray) -> np.ndarray:
    """``sum_{d<terms} ratio^d``, also where ``ratio`` is 1."""
    with np.errstate(divide="ignore", invalid="ignore"):
        closed = (1.0 - ratio ** terms) / (1.0 - ratio)
    return np.where(np.abs(1.0 - ratio) < 1e-12, terms.astype(np.float64), closed)


def _spread_unnormalised(pitch: np.ndarray, bands: CriticalBands) -> np.ndarray:
    """Level-dependent frequency spreading without the final normalisation (section 2.1.7).

    Source band ``j`` with level ``L = 10 log10 Pp[j]`` spreads downwards with 27 dB/Bark
    and upwards with ``24 + 230 Hz/fc[j] - 0.2 L`` dB/Bark; its spread energies are scaled
    to sum to ``Pp[j]`` (divided by ``A(j, E)``, the sum of the slope gains) and the
    contributions of all source bands are added with exponent 0.4:
    ``Es[k] = (sum_j Eline[j,k]^0.4)^(1/0.4)``.

    The level-independent lower slope is a matrix product; the upper slope, whose
    per-band ratio depends on the level of each source band, is accumulated band by band.
    """
    res, count = bands.resolution, bands.count
    z = np.arange(count)
    lower_ratio = 10.0 ** (-2.7 * res)  # power ratio per band step below the source
    upper_ratio = 10.0 ** ((-2.4 - 23.0 / bands.centre[None, :]) * res) * pitch ** (0.2 * res)
    norm = _geometric_sum(np.full(count, lower_ratio), z + 1)[None, :] + \
        _geometric_sum(upper_ratio, (count - z)[None, :]) - 1.0
    e = (pitch / norm) ** 0.4  # (Pp[j] / A(j))^0.4
    steps_below = z[:, None] - z[None, :]  # [j, k] = j - k
    lower = np.where(steps_below > 0, lower_ratio ** (0.4 * steps_below), 0.0)
    out = e @ lower  # sources j above target k
    step = upper_ratio ** 0.4
    state = np.zeros_like(e)
    for k in range(count):  # sources j <= k: e[j] * step[j]^(k - j)
        state[:, :k] *= step[:, :k]
        state[:, k] = e[:, k]
        out[:, k] += state[:, :k + 1].sum(axis=1)
    return out ** (1.0 / 0.4)


@lru_cache(maxsize=None)
def _spreading_norm(resolution: float) -> np.ndarray:
    bands = critical_bands(resolution)
    return _spread_unnormalised(np.ones((1, bands.count)), bands)[0]


def spread_frequency(pitch: np.ndarray, resolution: float = BAND_RESOLUTION) -> np.ndarray:
    """Spread pitch patterns ``(frames, bands)`` over frequency: ``Es = Es' / NormSP``
    where ``NormSP`` is the spreading of a pattern of ones (section 2.1.7)."""
    bands = critical_bands(resolution)
    return _spread_unnormalised(np.asarray(pitch, dtype=np.float64), bands) / _spreading_norm(resolution)


def frame_signal(x: np.ndarray, num_frames: int) -> np.ndarray:
    """``(num_frames, FRAME_SIZE)`` frames with hop ``HOP_SIZE``, zero-padded past the end."""
    need = (num_frames - 1) * HOP_SIZE + FRAME_SIZE
    padded = np.zeros(max(need, len(x)), dtype=np.float64)
    padded[:len(x)] = x
    idx = np.arange(num_frames)[:, None] * HOP_SIZE + np.arange(FRAME_SIZE)[None, :]
    return padded[idx]


@dataclass
class EarModelOutput:
    """Per-frame outputs of the FFT ear model for one signal (section 2.1).

    ``power``: level-scaled power spectra ``|F[k]|^2`` ``(frames, 1025)``; ``weighted``: the
    same after outer/middle-ear weighting ``|Fe[k]|^2``; ``unsmeared``: excitation patterns
    before time-domain spreading (``E2``); ``excitation``: after it (``E``), both
    ``(frames, 109)``.
    """

    power: np.ndarray
    weighted: np.ndarray
    unsmeared: np.ndarray
    excitation: np.ndarray


@lru_cache(maxsize=None)
def _ear_weights() -> np.ndarray:
    f = np.arange(FRAME_SIZE // 2 + 1) * SAMPLE_RATE / FRAME_SIZE
    return 10.0 ** (outer_middle_ear_db(f) / 10.0)  # power domain; 0 at DC


def ear_model(frames: np.ndarray, playback_level_db: float = PLAYBACK_LEVEL_DB) -> EarModelOutput:
    """Run the basic-version FFT ear model on ``(frames, 2048)`` samples at 48 kHz.

    Samples are full-scale at 1.0.  Steps: Hann window and DFT (eqs. 3-4), playback-level
    scaling (section 2.1.3), outer/middle-ear weighting (eqs. 7-9), grouping into bands
    (section 2.1.5), internal noise (eqs. 13-14), frequency spreading (section 2.1.7) and
    time-domain spreading ``E = max(Ef, E2)`` with ``Ef[n] = a Ef[n-1] + (1-a) E2[n]``
    (section 2.1.8, eqs. 21 and 24; the state starts at zero as in Kabal).
    """
    bands = critical_bands()
    spectrum = np.fft.rfft(frames * hann_window()[None, :], axis=-1)
    power = (spectrum.real ** 2 + spectrum.imag ** 2) * level_factor(playback_level_db)
    weighted = power * _ear_weights()[None, :]
    pitch = group_into_bands(weighted) + internal_noise(bands.centre)[None, :]
    unsmeared = spread_frequency(pitch)
    a = smoothing_coefficients(bands.centre, EAR_TAU_MIN, EAR_TAU_100)
    excitation = np.maximum(recursive_average(unsmeared, a), unsmeared)
    return EarModelOutput(power=power, weighted=weighted, unsmeared=unsmeared, excitation=excitation)
