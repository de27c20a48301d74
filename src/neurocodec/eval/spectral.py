"""Spectral distances and effective bandwidth (eval layer).

* :func:`mel_distance` - multi-scale log-mel L1 distance, the frequency term of EnCodec's
  reconstruction loss (defossez2022 §3.4, eq. 1) used as a metric;
* :func:`log_spectral_distance` - LSD as in audio super-resolution (Kuleshov et al. 2017);
* :func:`effective_bandwidth` - up to which frequency the decoded signal carries the
  reference's spectrum.

All take an aligned ``(ref, deg, sr)`` pair of equal-length mono signals.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import signal

from ..dsp.mel import log_mel_spectrogram, mel_filterbank
from .signals import as_pair, undefined

#: EnCodec eq. 1: windows 2^i for i = 5..11, hop of a quarter window, 64 mel bins
MEL_SCALES = tuple(2 ** i for i in range(5, 12))
MEL_BINS = 64
MEL_FLOOR = 1e-5

LSD_N_FFT = 2048
LSD_HOP = 512
LSD_EPS = 1e-10

#: effective bandwidth: tolerated level drop (dB) of the decoded long-term spectrum, and the
#: range below the reference's spectral peak (dB) where reference bins count as content
BANDWIDTH_TOLERANCE_DB = 10.0
BANDWIDTH_FLOOR_DB = 60.0


def mel_distance(ref, deg, sr: int) -> float:
    """Multi-scale mel distance: mean L1 distance between log10 mel spectrograms.

    For each window ``2^i``, ``i = 5..11`` (hop ``2^i / 4``), a 64-bin Slaney mel spectrogram
    of the normalized STFT magnitude, compressed as ``log10(max(S, 1e-5))``
    (:func:`neurocodec.dsp.mel.log_mel_spectrogram`); the metric is the mean over scales of
    the mean absolute difference over time and over the filters that cover at least one FFT
    bin (the L1 term of EnCodec eq. 1, on log-mel; at small windows many of the 64 triangles
    fall between FFT bins and are left out rather than counted as zero distance).  0 for
    identical signals; a gain of ``g`` gives ``|log10 g|`` where no floor is hit; lower is better.
    """
    ref, deg = as_pair(ref, deg)
    dists = []
    both = np.stack([ref, deg])
    for n_fft in MEL_SCALES:
        used = mel_filterbank(sr, n_fft, MEL_BINS).sum(axis=1) > 0
        mel = log_mel_spectrogram(both, sr, n_fft, hop_length=n_fft // 4, n_mels=MEL_BINS, floor=MEL_FLOOR)
        dists.append(float(np.mean(np.abs(mel[0, used].astype(np.float64) - mel[1, used]))))
    return float(np.mean(dists))


def log_spectral_distance(ref, deg, sr: int) -> float:
    """Log-spectral distance (Kuleshov, Enam & Ermon 2017, "Audio super resolution", §4).

    ``LSD = 1/T sum_t sqrt(1/K sum_k (log10 P_ref(t,k) - log10 P_deg(t,k))^2)`` where ``P``
    is the power spectrogram (Hann window of 2048 samples, hop 512, plus 1e-10 to keep
    silence finite).  In log10-power units (multiply by 10 for dB).  0 when identical.
    """
    ref, deg = as_pair(ref, deg)
    n_fft = LSD_N_FFT
    if ref.size < n_fft:  # short input: one zero-padded frame
        pad = n_fft - ref.size
        ref, deg = np.pad(ref, (0, pad)), np.pad(deg, (0, pad))
    _, _, s_ref = signal.stft(ref, nperseg=n_fft, noverlap=n_fft - LSD_HOP, window="hann",
                              boundary=None, padded=False, scaling="spectrum")
    _, _, s_deg = signal.stft(deg, nperseg=n_fft, noverlap=n_fft - LSD_HOP, window="hann",
                              boundary=None, padded=False, scaling="spectrum")
    diff = np.log10(np.abs(s_ref) ** 2 + LSD_EPS) - np.log10(np.abs(s_deg) ** 2 + LSD_EPS)
    return float(np.mean(np.sqrt(np.mean(diff ** 2, axis=0))))


def long_term_spectrum(x: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
    """Welch power spectral density (Hann, ~32 ms segments, 50% overlap): ``(freqs, psd)``."""
    nperseg = int(2 ** round(math.log2(max(sr * 0.032, 16))))
    nperseg = min(nperseg, x.size)
    return signal.welch(x, fs=sr, window="hann", nperseg=nperseg, noverlap=nperseg // 2)


def effective_bandwidth(ref, deg, sr: int, tolerance_db: float = BANDWIDTH_TOLERANCE_DB,
                        floor_db: float = BANDWIDTH_FLOOR_DB) -> float:
    """Effective audio bandwidth of the decoded signal in Hz (higher is better).

    Definition (ours; robust to isolated bins): compute the long-term (Welch) spectra of both
    signals.  *Content bins* are those where the reference's spectrum lies within
    ``floor_db`` (60 dB) of its peak; a content bin *passes* when the decoded spectrum is at
    most ``tolerance_db`` (10 dB) below the reference's there.  The bandwidth is the upper
    edge of the step ``pass below f, fail above f`` that best fits the pass/fail pattern over
    the content bins (it maximises ``#pass - #fail`` below ``f``; the highest such ``f`` on
    ties).  So it is never above the reference's own bandwidth; a low-pass at ``fc`` gives
    about ``fc`` (where the filter has fallen by ``tolerance_db``); energy added by the codec
    (noise) counts as content.  NaN with a warning when the reference is silent.
    """
    ref, deg = as_pair(ref, deg)
    freqs, p_ref = long_term_spectrum(ref, sr)
    _, p_deg = long_term_spectrum(deg, sr)
    if p_ref.max() <= 0.0:
        return undefined("effective bandwidth is undefined for a silent reference")
    content = p_ref >= p_ref.max() * 10.0 ** (-floor_db / 10.0)
    passes = p_deg[content] >= p_ref[content] * 10.0 ** (-tolerance_db / 10.0)
    score = np.cumsum(np.where(passes, 1, -1))
    if score.max() <= 0:
        return 0.0
    best = np.flatnonzero(score == score.max())[-1]
    df = freqs[1] - freqs[0]
    return float(min(freqs[content][best] + df / 2.0, sr / 2.0))
