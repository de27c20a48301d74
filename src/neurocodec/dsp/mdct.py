"""Modified discrete cosine transform (MDCT) with time-domain aliasing cancellation.

The waveform coder of fejgin2020 §3.1 frames the signal "to facilitate application of an
MDCT with a stride of 320 samples" at 16 kHz.  This module implements that transform for
any stride ``N`` (frame length ``2N``) with a window ``w`` satisfying the Princen-Bradley
condition ``w[n]^2 + w[n + N]^2 = 1`` (sine or Kaiser-Bessel-derived), so that windowed
overlap-add of the inverse transforms reconstructs the input exactly (TDAC).

Definition (orthonormal scaling, ``n0 = (N + 1) / 2``)::

    X[k] = sqrt(2/N) * sum_{n=0}^{2N-1} w[n] x[n] cos(pi/N (n + n0) (k + 1/2)),  k < N
    y[n] = sqrt(2/N) * w[n] * sum_{k=0}^{N-1} X[k] cos(pi/N (n + n0) (k + 1/2))

computed with an FFT-based DCT-IV (``scipy.fft.dct(type=4, norm="ortho")``) after folding
the ``2N`` windowed samples into ``N``.

:func:`analyze` / :func:`synthesize` (and the streaming :func:`frame_signal` /
:func:`overlap_add`) handle framing: the signal is preceded by ``N`` zeros,
frame ``j`` covers padded samples ``[jN, jN + 2N)``, and ``num_frames(T) = ceil(T/N) + 1``
frames cover ``T`` samples, so the synthesis output is aligned with the input (the MDCT
delay of ``N`` samples is compensated) and has exactly ``T`` samples.
"""

from __future__ import annotations

import numpy as np
from scipy import fft as sfft
from scipy.special import i0

__all__ = [
    "sine_window",
    "kbd_window",
    "make_window",
    "mdct",
    "imdct",
    "num_frames",
    "frame_signal",
    "analyze",
    "overlap_add",
    "synthesize",
]


def sine_window(frame_length: int) -> np.ndarray:
    """Sine window ``w[n] = sin(pi (n + 1/2) / L)`` of even length ``L`` (Princen-Bradley)."""
    if frame_length < 2 or frame_length % 2:
        raise ValueError(f"frame length must be even and >= 2, got {frame_length}")
    n = np.arange(frame_length, dtype=np.float64)
    return np.sin(np.pi * (n + 0.5) / frame_length)


def kbd_window(frame_length: int, alpha: float = 4.0) -> np.ndarray:
    """Kaiser-Bessel-derived window of even length ``L`` (as in AAC): the square root of the
    normalised cumulative sum of a Kaiser window of length ``L/2 + 1`` with ``beta = pi*alpha``,
    mirrored.  It satisfies the Princen-Bradley condition by construction."""
    if frame_length < 2 or frame_length % 2:
        raise ValueError(f"frame length must be even and >= 2, got {frame_length}")
    half = frame_length // 2
    n = np.arange(half + 1, dtype=np.float64)
    kaiser = i0(np.pi * alpha * np.sqrt(1.0 - (2.0 * n / half - 1.0) ** 2))
    csum = np.cumsum(kaiser)
    rising = np.sqrt(csum[:half] / csum[half])
    return np.concatenate([rising, rising[::-1]])


def make_window(name: str, frame_length: int) -> np.ndarray:
    """Window by name: ``"sine"`` or ``"kbd"`` (alpha 4)."""
    if name == "sine":
        return sine_window(frame_length)
    if name == "kbd":
        return kbd_window(frame_length)
    raise ValueError(f"unknown MDCT window '{name}' (use 'sine' or 'kbd')")


def mdct(frames: np.ndarray, window: np.ndarray) -> np.ndarray:
    """MDCT of frames shaped ``(..., 2N)`` -> coefficients ``(..., N)`` (orthonormal scaling).

    The windowed frame ``z = [a, b, c, d]`` (quarters of ``N/2``) is folded into
    ``u = [-c_r - d, a - b_r]`` (``_r`` = reversed), whose DCT-IV equals the MDCT."""
    z = np.asarray(frames, dtype=np.float64) * window
    two_n = z.shape[-1]
    n = two_n // 2
    h = n // 2
    a, b, c, d = z[..., :h], z[..., h:n], z[..., n:n + h], z[..., n + h:]
    u = np.concatenate([-c[..., ::-1] - d, a - b[..., ::-1]], axis=-1)
    return sfft.dct(u, type=4, norm="ortho", axis=-1)


def imdct(coefs: np.ndarray, window: np.ndarray) -> np.ndarray:
    """Inverse MDCT: coefficients ``(..., N)`` -> windowed, time-aliased frames ``(..., 2N)``.

    Overlap-adding consecutive outputs with a stride of ``N`` cancels the aliasing (TDAC)."""
    u = sfft.dct(np.asarray(coefs, dtype=np.float64), type=4, norm="ortho", axis=-1)
    n = u.shape[-1]
    h = n // 2
    u1, u2 = u[..., :h], u[..., h:]
    y = np.concatenate([u2, -u2[..., ::-1], -u1[..., ::-1], -u1], axis=-1)
    return y * window


def num_frames(num_samples: int, hop: int) -> int:
    """Number of MDCT frames covering ``num_samples`` samples: ``ceil(T / N) + 1``."""
    if num_samples < 0:
        raise ValueError("num_samples must be >= 0")
    return -(-num_samples // hop) + 1


def frame_signal(signal: np.ndarray, hop: int, first: int, count: int) -> np.ndarray:
    """Frames ``first .. first+count-1`` (each ``2*hop`` samples) of the framing used by
    :func:`analyze`: frame ``j`` covers input samples ``[(j-1) hop, (j+1) hop)``, zero outside
    the signal.  Lets long signals be transformed a stretch at a time."""
    x = np.asarray(signal, dtype=np.float64)
    lo, hi = (first - 1) * hop, (first + count) * hop
    seg = np.zeros(hi - lo, dtype=np.float64)
    a, b = max(lo, 0), min(hi, x.shape[0])
    if b > a:
        seg[a - lo:b - lo] = x[a:b]
    blocks = seg.reshape(count + 1, hop)
    return np.concatenate([blocks[:-1], blocks[1:]], axis=1)


def analyze(signal: np.ndarray, hop: int, window: np.ndarray) -> np.ndarray:
    """MDCT analysis of a 1-D signal of ``T`` samples -> ``(num_frames(T), hop)`` coefficients.

    The signal is preceded by ``hop`` zeros and zero-padded at the end so that every sample
    is covered by two frames (see module docstring)."""
    x = np.asarray(signal, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError("analyze expects a 1-D signal")
    return mdct(frame_signal(x, hop, 0, num_frames(x.shape[0], hop)), window)


def overlap_add(coefs: np.ndarray, window: np.ndarray, carry: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """Streaming synthesis: inverse MDCT of consecutive frames ``(F, hop)`` overlap-added.

    ``carry`` is the second half of the previous frame (``None`` at the start).  Returns the
    ``F * hop`` finished samples (of the zero-delayed framing of :func:`analyze`, i.e. the
    first call's output starts ``hop`` samples before the signal) and the new carry."""
    coefs = np.asarray(coefs, dtype=np.float64)
    frames_n, hop = coefs.shape
    y = imdct(coefs, window)
    out = np.zeros((frames_n + 1, hop), dtype=np.float64)
    out[:-1] += y[:, :hop]
    out[1:] += y[:, hop:]
    if carry is not None:
        out[0] += carry
    return out[:-1].reshape(-1), out[-1].copy()


def synthesize(coefs: np.ndarray, num_samples: int, window: np.ndarray) -> np.ndarray:
    """Inverse of :func:`analyze`: overlap-add of :func:`imdct` frames, delay removed,
    exactly ``num_samples`` samples (float64)."""
    coefs = np.asarray(coefs, dtype=np.float64)
    frames_n, hop = coefs.shape
    if frames_n != num_frames(num_samples, hop):
        raise ValueError(f"{frames_n} frames cannot describe {num_samples} samples (stride {hop})")
    out, _ = overlap_add(coefs, window)
    return out[hop:hop + num_samples]
