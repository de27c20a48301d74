"""Waveform fidelity: SNR, segmental SNR and scale-invariant SNR (eval layer).

All functions take an aligned ``(ref, deg, sr)`` pair of equal-length mono signals and return
decibels.  A perfect reconstruction (zero error) gives ``+inf`` for SNR and SI-SNR (a silent
decoded signal gives SI-SNR ``-inf``); a silent reference makes them undefined: NaN with a
:class:`~neurocodec.eval.signals.MetricWarning`.
"""

from __future__ import annotations

import math

import numpy as np

from .signals import as_pair, undefined

#: segmental SNR frame length and per-frame clamp (Hansen & Pellom 1998)
SEGSNR_FRAME_S = 0.020
SEGSNR_MIN_DB = -10.0
SEGSNR_MAX_DB = 35.0
#: frames whose reference energy is this far below the loudest frame count as silence
SEGSNR_SILENCE_DB = 40.0


def _ratio_db(signal_energy: float, noise_energy: float) -> float:
    if signal_energy == 0.0:  # nothing of the reference survived (SI-SNR of a silent decode)
        return -math.inf
    if noise_energy == 0.0:
        return math.inf
    return 10.0 * math.log10(signal_energy / noise_energy)


def snr(ref, deg, sr: int) -> float:
    """Signal-to-noise ratio ``10 log10(sum ref^2 / sum (ref - deg)^2)`` in dB (+inf when equal)."""
    ref, deg = as_pair(ref, deg)
    e_ref = float(np.sum(ref ** 2))
    if e_ref == 0.0:
        return undefined("SNR is undefined for a silent reference")
    return _ratio_db(e_ref, float(np.sum((ref - deg) ** 2)))


def segmental_snr(ref, deg, sr: int) -> float:
    """Segmental SNR in dB: the mean over 20 ms frames of the frame SNR clamped to [-10, 35] dB.

    The standard definition (Quackenbush, Barnwell & Clements, *Objective Measures of Speech
    Quality*, 1988; clamp limits of Hansen & Pellom, ICSLP 1998):
    ``segSNR = 1/M sum_m clamp(10 log10(sum_n s_m[n]^2 / sum_n (s_m[n] - y_m[n])^2), -10, 35)``
    over non-overlapping frames ``m`` (a last partial frame is dropped).  Frames whose
    reference energy is more than 40 dB below the loudest frame (pauses) are skipped, so
    silence does not pull the mean to the -10 dB floor.
    """
    ref, deg = as_pair(ref, deg)
    n = max(1, int(round(SEGSNR_FRAME_S * sr)))
    m = ref.size // n
    if m == 0:
        return undefined(f"segmental SNR needs at least one 20 ms frame ({n} samples), got {ref.size}")
    s = ref[:m * n].reshape(m, n)
    e = (ref - deg)[:m * n].reshape(m, n)
    e_sig = np.sum(s ** 2, axis=1)
    e_err = np.sum(e ** 2, axis=1)
    if e_sig.max() == 0.0:
        return undefined("segmental SNR is undefined for a silent reference")
    active = e_sig > e_sig.max() * 10.0 ** (-SEGSNR_SILENCE_DB / 10.0)
    with np.errstate(divide="ignore"):
        frame_db = 10.0 * np.log10(e_sig[active] / e_err[active])  # +inf where the error is 0
    return float(np.mean(np.clip(frame_db, SEGSNR_MIN_DB, SEGSNR_MAX_DB)))


def si_snr(ref, deg, sr: int) -> float:
    """Scale-invariant SNR in dB (Luo & Mesgarani, Conv-TasNet, 2019, eq. 11; used by EnCodec §4.2).

    With zero-mean signals, ``s_t = <deg, ref> ref / ||ref||^2`` and ``e = deg - s_t``:
    ``SI-SNR = 10 log10(||s_t||^2 / ||e||^2)``.  Invariant to the gain of ``deg``.
    """
    ref, deg = as_pair(ref, deg)
    ref = ref - ref.mean()
    deg = deg - deg.mean()
    e_ref = float(np.dot(ref, ref))
    if e_ref == 0.0:
        return undefined("SI-SNR is undefined for a silent (or constant) reference")
    target = (np.dot(deg, ref) / e_ref) * ref
    return _ratio_db(float(np.dot(target, target)), float(np.sum((deg - target) ** 2)))
