"""Linear prediction for the LPC analyzer of CQ (zhen2020 §3.1) and LPC-CMRL (zhen2019 §3.1).

Conventions
-----------
* An LPC filter is stored as the coefficients of the *prediction-error* (analysis) filter
  ``A(z) = a[0] + a[1] z^-1 + ... + a[p] z^-p`` with ``a[0] = 1``; the residual is
  ``e[t] = sum_i a[i] s[t-i]``.  zhen2020 §3.1 writes the predictor as
  ``s_hat(t) = sum_i alpha_i s(t-i)``, i.e. ``a[i] = -alpha_i``.
* Line spectral pairs (LSPs, Soong & Juang 1984, ref. [24] of zhen2020) are the ``p``
  angles in ``(0, pi)`` (radians, ascending) of the unit-circle zeros of
  ``P(z) = A(z) + z^-(p+1) A(1/z)`` and ``Q(z) = A(z) - z^-(p+1) A(1/z)`` other than the
  trivial zeros at ``z = -1`` (P) and ``z = 1`` (Q).  Only even orders are supported (the
  papers use p = 16).  ``A`` is minimum phase exactly when the LSPs are strictly increasing,
  inside ``(0, pi)`` and alternate between ``P`` and ``Q``.

What is here
------------
* 50 Hz high-pass (2nd-order Butterworth) and the pre-/de-emphasis ``1 -/+ 0.68 z^-1``
  (zhen2020 §3.1, after AMR-WB), in numpy (exact IIR, float64) and torch (differentiable;
  IIR parts as FIR convolutions with the impulse response truncated where it has decayed
  below 1e-12, i.e. equal to the IIR to float64 rounding);
* the windows of zhen2020 Fig. 3: the 1024-sample analysis window (a), the seven 128-sample
  residual sub-frame windows (b) and the 512/32 overlap-add window of the autoencoder
  frames (c); all Hann halves come from *periodic* Hann windows so that overlapping halves
  sum to exactly one (perfect reconstruction);
* autocorrelation, AMR-WB's Gaussian lag window and white-noise correction, and the
  Levinson-Durbin recursion (numpy reference; batched, differentiable torch);
* LPC -> LSP (eigenvalues of the Chebyshev colleague matrices of the deflated sum and
  difference polynomials, batched, float64) and LSP -> LPC (numpy and differentiable torch);
* residual filtering with the sub-frame windowing of Fig. 3b and its exact inverse, the
  all-pole synthesis filter with state carried across segments (numpy reference with
  ``scipy.signal.lfilter``; differentiable torch version using the power-series inverse of
  ``A`` computed by Newton iteration and FFT convolutions).

Segments: the residual is computed on consecutive, non-overlapping segments of
``segment_length`` (512) samples, segment ``k`` with the coefficients of the analysis frame
centred on it (samples ``[512k - 256, 512k + 768)``), as in zhen2020 §3.1 ("given the 50%
analysis frame overlap, there is no overlap between residual segments").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import scipy.signal
import torch
from torch.nn import functional as F

__all__ = [
    "PREEMPHASIS", "LevinsonResult",
    "highpass_sos", "highpass", "highpass_torch",
    "preemphasis", "deemphasis", "preemphasis_torch", "deemphasis_torch",
    "lpc_analysis_window", "subframe_windows", "subframe_window_sum", "overlap_add_window",
    "autocorrelation", "autocorrelation_torch", "lag_window",
    "levinson_durbin", "levinson_durbin_torch",
    "lpc_from_frames", "lpc_from_frames_torch",
    "lpc_to_lsp", "lsp_to_lpc", "lsp_to_lpc_torch", "stabilize_lsp", "stabilize_lsp_torch",
    "is_minimum_phase", "bandwidth_expand", "stability_factors",
    "lpc_residual", "lpc_synthesis", "lpc_residual_torch", "lpc_synthesis_torch",
    "impulse_response_torch", "analysis_frames",
]

#: pre-emphasis coefficient of zhen2020 §3.1: H_emp(z) = 1 - 0.68 z^-1
PREEMPHASIS = 0.68
#: impulse-response tails shorter than this relative size are dropped in the FIR versions
_IR_TOL = 1e-12


# ---------------------------------------------------------------------------------------
# high-pass and pre-/de-emphasis
# ---------------------------------------------------------------------------------------
def highpass_sos(sample_rate: int = 16000, cutoff_hz: float = 50.0, order: int = 2) -> np.ndarray:
    """Second-order sections of the Butterworth high-pass used before LPC analysis.

    zhen2020 §3.1 (after AMR-WB [23]) specifies a 50 Hz cut-off but not the design; AMR-WB's
    own filter is a 2nd-order IIR designed at 12.8 kHz.  We use a 2nd-order Butterworth
    designed directly at ``sample_rate``.
    """
    return scipy.signal.butter(order, cutoff_hz, btype="highpass", fs=sample_rate, output="sos")


def highpass(x: np.ndarray, sample_rate: int = 16000, cutoff_hz: float = 50.0) -> np.ndarray:
    """50 Hz high-pass of ``x`` along the last axis (exact IIR, float64 in and out)."""
    return scipy.signal.sosfilt(highpass_sos(sample_rate, cutoff_hz), np.asarray(x, dtype=np.float64), axis=-1)


@lru_cache(maxsize=8)
def _highpass_ir(sample_rate: int, cutoff_hz: float) -> np.ndarray:
    sos = highpass_sos(sample_rate, cutoff_hz)
    n = 1024
    while True:
        imp = np.zeros(n)
        imp[0] = 1.0
        h = scipy.signal.sosfilt(sos, imp)
        if np.max(np.abs(h[-n // 8:])) < _IR_TOL:
            break
        n *= 2
    keep = np.flatnonzero(np.abs(h) >= _IR_TOL)
    return h[: keep[-1] + 1]


def _fft_causal_conv(x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """``y[t] = sum_k h[k] x[t-k]`` for ``t < x.shape[-1]`` (zero initial state), via FFT."""
    n = x.shape[-1] + h.shape[-1] - 1
    nfft = 1 << max(1, (n - 1).bit_length())
    y = torch.fft.irfft(torch.fft.rfft(x, nfft) * torch.fft.rfft(h, nfft), nfft)
    return y[..., : x.shape[-1]]


def highpass_torch(x: torch.Tensor, sample_rate: int = 16000, cutoff_hz: float = 50.0) -> torch.Tensor:
    """Differentiable 50 Hz high-pass of ``x`` (..., T): FFT convolution with the Butterworth
    impulse response truncated below 1e-12 (same output as :func:`highpass` to ~1e-12)."""
    h = torch.as_tensor(_highpass_ir(int(sample_rate), float(cutoff_hz)), dtype=x.dtype, device=x.device)
    return _fft_causal_conv(x, h)


def preemphasis(x: np.ndarray, coef: float = PREEMPHASIS) -> np.ndarray:
    """``y[t] = x[t] - coef * x[t-1]`` along the last axis (``x[-1] = 0``), float64."""
    x = np.asarray(x, dtype=np.float64)
    y = x.copy()
    y[..., 1:] -= coef * x[..., :-1]
    return y


def deemphasis(x: np.ndarray, coef: float = PREEMPHASIS) -> np.ndarray:
    """Inverse of :func:`preemphasis`: ``y[t] = x[t] + coef * y[t-1]`` (zero state), float64."""
    return scipy.signal.lfilter([1.0], [1.0, -coef], np.asarray(x, dtype=np.float64), axis=-1)


def preemphasis_torch(x: torch.Tensor, coef: float = PREEMPHASIS) -> torch.Tensor:
    """Differentiable :func:`preemphasis` of ``x`` (..., T)."""
    return torch.cat([x[..., :1], x[..., 1:] - coef * x[..., :-1]], dim=-1)


def deemphasis_torch(x: torch.Tensor, coef: float = PREEMPHASIS) -> torch.Tensor:
    """Differentiable :func:`deemphasis`: causal FIR with taps ``coef**n`` for ``n < N`` where
    ``coef**N < 1e-12`` (identical to the IIR to float64 rounding)."""
    if not 0.0 <= abs(coef) < 1.0:
        raise ValueError("de-emphasis coefficient must satisfy |coef| < 1")
    if coef == 0.0:
        return x
    n = int(math.ceil(math.log(_IR_TOL) / math.log(abs(coef)))) + 1
    taps = torch.as_tensor(coef ** np.arange(n), dtype=x.dtype, device=x.device)
    shape = x.shape
    y = F.conv1d(F.pad(x.reshape(-1, 1, shape[-1]), (n - 1, 0)), taps.flip(0).view(1, 1, -1))
    return y.reshape(shape)


# ---------------------------------------------------------------------------------------
# windows (zhen2020 Fig. 3)
# ---------------------------------------------------------------------------------------
def _periodic_hann(n: int) -> np.ndarray:
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)


def lpc_analysis_window(frame_length: int = 1024) -> np.ndarray:
    """Fig. 3a: rising half of a Hann window of ``frame_length/2`` points, ``frame_length/2``
    ones, falling half (25% / 50% / 25%), float64."""
    if frame_length % 4:
        raise ValueError("LPC analysis frame length must be a multiple of 4")
    q = frame_length // 4
    hann = _periodic_hann(2 * q)
    return np.concatenate([hann[:q], np.ones(2 * q), hann[q:]])


def subframe_windows(segment_length: int = 512, subframe_length: int = 128) -> np.ndarray:
    """Fig. 3b: windows of the residual sub-frames, shape ``(n_sub, subframe_length)``.

    Sub-frame ``j`` starts at ``j * subframe_length / 2`` inside the segment (50% overlap;
    seven sub-frames for 512/128).  The inner ones are periodic Hann windows; the first is
    flat on its first half and the last on its second half, so the windows sum to one over
    the whole segment (see :func:`subframe_window_sum`).
    """
    if subframe_length % 2 or segment_length % (subframe_length // 2) or segment_length < subframe_length:
        raise ValueError("segment_length must be a multiple of subframe_length/2 and at least subframe_length")
    half = subframe_length // 2
    n_sub = segment_length // half - 1
    hann = _periodic_hann(subframe_length)
    w = np.tile(hann, (n_sub, 1))
    w[0, :half] = 1.0
    w[-1, half:] = 1.0
    return w


def subframe_window_sum(segment_length: int = 512, subframe_length: int = 128) -> np.ndarray:
    """Overlap-add of :func:`subframe_windows` over one segment (all ones up to rounding)."""
    w = subframe_windows(segment_length, subframe_length)
    half = subframe_length // 2
    total = np.zeros(segment_length)
    for j in range(w.shape[0]):
        total[j * half: j * half + subframe_length] += w[j]
    return total


def overlap_add_window(frame_length: int = 512, overlap: int = 32) -> np.ndarray:
    """Fig. 3c / zhen2019 §2.1.1: ones with the rising (first ``overlap`` samples) and falling
    (last ``overlap``) halves of a periodic Hann window of ``2*overlap`` points.  Frames
    taken every ``frame_length - overlap`` samples and overlap-added with this window sum to
    one."""
    if not 0 <= 2 * overlap <= frame_length:
        raise ValueError("overlap must be between 0 and frame_length/2")
    w = np.ones(frame_length)
    if overlap:
        hann = _periodic_hann(2 * overlap)
        w[:overlap] = hann[:overlap]
        w[-overlap:] = hann[overlap:]
    return w


# ---------------------------------------------------------------------------------------
# autocorrelation and Levinson-Durbin
# ---------------------------------------------------------------------------------------
def autocorrelation(frames: np.ndarray, order: int) -> np.ndarray:
    """``r[k] = sum_t x[t] x[t+k]`` for ``k = 0..order`` of frames ``(..., N)`` (float64)."""
    x = np.asarray(frames, dtype=np.float64)
    n = x.shape[-1]
    return np.stack([np.sum(x[..., : n - k] * x[..., k:], axis=-1) for k in range(order + 1)], axis=-1)


def autocorrelation_torch(frames: torch.Tensor, order: int) -> torch.Tensor:
    """Differentiable :func:`autocorrelation` of frames ``(..., N)``."""
    n = frames.shape[-1]
    return torch.stack([(frames[..., : n - k] * frames[..., k:]).sum(-1) for k in range(order + 1)], dim=-1)


def lag_window(order: int, sample_rate: int = 16000, bandwidth_hz: float = 60.0) -> np.ndarray:
    """Gaussian lag window ``w[k] = exp(-(2 pi f0 k / fs)^2 / 2)`` (AMR-WB, f0 = 60 Hz),
    ``k = 0..order``; it widens sharp formant peaks before Levinson-Durbin."""
    k = np.arange(order + 1, dtype=np.float64)
    return np.exp(-0.5 * (2.0 * np.pi * bandwidth_hz * k / sample_rate) ** 2)


@dataclass
class LevinsonResult:
    """Levinson-Durbin solution: ``a`` (..., p+1) with ``a[...,0] = 1`` (prediction-error
    filter), reflection coefficients ``k`` (..., p) and final prediction-error power ``error``."""

    a: Any
    k: Any
    error: Any


def levinson_durbin(r: np.ndarray) -> LevinsonResult:
    """Solve the autocorrelation normal equations for ``A(z)`` (numpy reference, float64).

    ``r`` has shape (..., p+1).  Frames with ``r[0] <= 0`` (digital silence) get
    ``A(z) = 1``.  The classic recursion (Levinson 1947, Durbin 1960): for ``i = 1..p``,
    ``k_i = -(r[i] + sum_{j<i} a_j r[i-j]) / E_{i-1}``, ``a_j <- a_j + k_i a_{i-j}``,
    ``a_i = k_i``, ``E_i = (1 - k_i^2) E_{i-1}``.
    """
    r = np.asarray(r, dtype=np.float64)
    p = r.shape[-1] - 1
    batch = r.shape[:-1]
    a = np.zeros(batch + (p + 1,))
    a[..., 0] = 1.0
    ks = np.zeros(batch + (p,))
    silent = r[..., 0] <= 0
    err = np.where(silent, 1.0, r[..., 0])
    rr = np.where(silent[..., None], 0.0, r)
    for i in range(1, p + 1):
        acc = rr[..., i] + np.sum(a[..., 1:i] * rr[..., i - 1:0:-1], axis=-1)
        k = -acc / err
        prev = a.copy()
        a[..., 1:i] = prev[..., 1:i] + k[..., None] * prev[..., i - 1:0:-1]
        a[..., i] = k
        ks[..., i - 1] = k
        err = err * (1.0 - k * k)
    return LevinsonResult(a=a, k=ks, error=np.where(silent, 0.0, err))


def levinson_durbin_torch(r: torch.Tensor, eps: float = 1e-12) -> LevinsonResult:
    """Batched, differentiable Levinson-Durbin on ``r`` (..., p+1); see :func:`levinson_durbin`.

    ``r[...,0]`` is clamped to at least ``eps`` so that silent frames give ``A(z) = 1``
    without dividing by zero.
    """
    p = r.shape[-1] - 1
    r0 = r[..., :1].clamp_min(eps)
    r = torch.cat([r0, r[..., 1:]], dim=-1)
    a = torch.ones_like(r[..., :1])  # a[0..i-1]
    err = r[..., 0]
    ks = []
    for i in range(1, p + 1):
        acc = r[..., i] + (a[..., 1:i] * r[..., 1:i].flip(-1)).sum(-1) if i > 1 else r[..., 1]
        k = -acc / err
        inner = a[..., 1:i] + k[..., None] * a[..., 1:i].flip(-1)
        a = torch.cat([a[..., :1], inner, k[..., None]], dim=-1)
        ks.append(k)
        err = err * (1.0 - k * k)
    return LevinsonResult(a=a, k=torch.stack(ks, dim=-1), error=err)


def _condition(r: Any, lag: np.ndarray, white_noise: float, lib) -> Any:
    lag_t = lag if lib is np else torch.as_tensor(lag, dtype=r.dtype, device=r.device)
    r = r * lag_t
    scale = lib.ones_like(r[..., :1]) * (1.0 + white_noise)
    if lib is np:
        return np.concatenate([r[..., :1] * scale, r[..., 1:]], axis=-1)
    return torch.cat([r[..., :1] * scale, r[..., 1:]], dim=-1)


def lpc_from_frames(frames: np.ndarray, order: int = 16, window: np.ndarray | None = None,
                    sample_rate: int = 16000, lag_window_hz: float | None = 60.0,
                    white_noise: float = 1e-4) -> np.ndarray:
    """LPC analysis of frames (..., N): window (default Fig. 3a), autocorrelation, lag window
    and white-noise correction ``r[0] *= 1 + white_noise`` (both as in AMR-WB), Levinson-Durbin.
    Returns ``A(z)`` coefficients (..., order+1), float64; always minimum phase."""
    frames = np.asarray(frames, dtype=np.float64)
    if window is None:
        window = lpc_analysis_window(frames.shape[-1])
    r = autocorrelation(frames * window, order)
    lag = lag_window(order, sample_rate, lag_window_hz) if lag_window_hz else np.ones(order + 1)
    return levinson_durbin(_condition(r, lag, white_noise, np)).a


def lpc_from_frames_torch(frames: torch.Tensor, order: int = 16, window: torch.Tensor | None = None,
                          sample_rate: int = 16000, lag_window_hz: float | None = 60.0,
                          white_noise: float = 1e-4) -> torch.Tensor:
    """Differentiable :func:`lpc_from_frames` for frames (..., N)."""
    if window is None:
        window = torch.as_tensor(lpc_analysis_window(frames.shape[-1]), dtype=frames.dtype, device=frames.device)
    r = autocorrelation_torch(frames * window, order)
    lag = lag_window(order, sample_rate, lag_window_hz) if lag_window_hz else np.ones(order + 1)
    return levinson_durbin_torch(_condition(r, lag, white_noise, torch)).a


def analysis_frames(signal: np.ndarray, num_segments: int, segment_length: int = 512,
                    frame_length: int = 1024) -> np.ndarray:
    """Analysis frames (..., num_segments, frame_length) centred on the residual segments:
    frame ``k`` covers ``[k*L - (N-L)/2, k*L + (N+L)/2)`` of ``signal`` (..., T), zero outside."""
    x = np.asarray(signal, dtype=np.float64)
    lead = (frame_length - segment_length) // 2
    need = num_segments * segment_length + frame_length - segment_length
    pad_right = max(0, need - lead - x.shape[-1])
    xp = np.pad(x, [(0, 0)] * (x.ndim - 1) + [(lead, pad_right)])[..., :need]
    view = np.lib.stride_tricks.sliding_window_view(xp, frame_length, axis=-1)
    return np.ascontiguousarray(view[..., ::segment_length, :][..., :num_segments, :])


# ---------------------------------------------------------------------------------------
# LPC <-> LSP
# ---------------------------------------------------------------------------------------
def _sum_diff_polys(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Deflated symmetric polynomials P(z)/(1+z^-1) and Q(z)/(1-z^-1), each (..., p+1)."""
    p = a.shape[-1] - 1
    ext = np.concatenate([a, np.zeros(a.shape[:-1] + (1,))], axis=-1)  # a_0..a_{p+1}, a_{p+1} = 0
    rev = ext[..., ::-1]
    P = ext + rev
    Q = ext - rev
    f = np.zeros(a.shape[:-1] + (p + 1,))
    g = np.zeros(a.shape[:-1] + (p + 1,))
    f[..., 0] = P[..., 0]
    g[..., 0] = Q[..., 0]
    for k in range(1, p + 1):
        f[..., k] = P[..., k] - f[..., k - 1]
        g[..., k] = Q[..., k] + g[..., k - 1]
    return f, g


def _cheb_roots(f: np.ndarray) -> np.ndarray:
    """Angles of the unit-circle zeros of symmetric polynomials ``f`` (..., 2m+1), ascending.

    ``z^m f(z)`` on the unit circle equals ``f_m + 2 sum_{k=1..m} f_{m-k} cos(k w)``, a
    Chebyshev series in ``x = cos w``; its roots are the eigenvalues of the colleague matrix
    (Good 1961), which are well conditioned on [-1, 1].
    """
    m = (f.shape[-1] - 1) // 2
    c = np.empty(f.shape[:-1] + (m + 1,))
    c[..., 0] = f[..., m]
    for k in range(1, m + 1):
        c[..., k] = 2.0 * f[..., m - k]
    batch = c.shape[:-1]
    if m == 1:
        x = -c[..., 0:1] / c[..., 1:2]
    else:
        mat = np.zeros(batch + (m, m))
        idx = np.arange(m - 1)
        mat[..., idx, idx + 1] = 0.5
        mat[..., idx + 1, idx] = 0.5
        mat[..., 0, 1] = 1.0
        mat[..., m - 1, :] -= c[..., :m] / (2.0 * c[..., m:m + 1])
        x = np.linalg.eigvals(mat)
    x = np.clip(np.real(x), -1.0, 1.0)
    # one Newton step on the Chebyshev series polishes the eigenvalue solution
    x = _newton_cheb(c, x)
    return np.sort(np.arccos(np.clip(x, -1.0, 1.0)), axis=-1)


def _newton_cheb(c: np.ndarray, x: np.ndarray, steps: int = 2) -> np.ndarray:
    m = c.shape[-1] - 1
    for _ in range(steps):
        # evaluate series and derivative with the Chebyshev recurrences
        t_prev, t = np.ones_like(x), x.copy()
        u_prev, u = np.zeros_like(x), np.ones_like(x)  # dT_k/dx
        val = c[..., :1] * t_prev + c[..., 1:2] * t
        der = c[..., 1:2] * u
        for k in range(2, m + 1):
            t_next = 2 * x * t - t_prev
            u_next = 2 * t + 2 * x * u - u_prev
            val = val + c[..., k:k + 1] * t_next
            der = der + c[..., k:k + 1] * u_next
            t_prev, t, u_prev, u = t, t_next, u, u_next
        ok = np.abs(der) > 1e-12
        step = np.where(ok, val / np.where(ok, der, 1.0), 0.0)
        new = x - step
        # only accept steps that stay inside the domain and are small
        x = np.where(ok & (np.abs(step) < 1e-3) & (np.abs(new) <= 1.0), new, x)
    return x


def lpc_to_lsp(a: np.ndarray) -> np.ndarray:
    """LSPs (..., p) in radians, ascending in (0, pi), of minimum-phase ``A(z)`` (..., p+1).

    Even ``p`` only.  Float64, batched (one ``eigvals`` call per polynomial family).
    """
    a = np.asarray(a, dtype=np.float64)
    p = a.shape[-1] - 1
    if p < 2 or p % 2:
        raise ValueError(f"LSP conversion needs an even LPC order >= 2, got {p}")
    f, g = _sum_diff_polys(a)
    wp = _cheb_roots(f)
    wq = _cheb_roots(g)
    return np.sort(np.concatenate([wp, wq], axis=-1), axis=-1)


def lsp_to_lpc(lsp: np.ndarray) -> np.ndarray:
    """``A(z)`` (..., p+1) from ascending LSPs (..., p) (numpy, float64).

    The odd-numbered LSPs (1st, 3rd, ...) are the zeros of ``P``, the even-numbered ones
    those of ``Q``; ``A = (P'(z)(1 + z^-1) + Q'(z)(1 - z^-1)) / 2`` with
    ``P'(z) = prod (1 - 2 cos w z^-1 + z^-2)``.
    """
    w = np.asarray(lsp, dtype=np.float64)
    p = w.shape[-1]
    if p < 2 or p % 2:
        raise ValueError(f"LSP conversion needs an even LPC order >= 2, got {p}")
    batch = w.shape[:-1]

    def product(angles: np.ndarray) -> np.ndarray:
        poly = np.zeros(batch + (p + 1,))
        poly[..., 0] = 1.0
        n = 0
        for j in range(angles.shape[-1]):
            b = -2.0 * np.cos(angles[..., j:j + 1])
            new = poly.copy()
            new[..., 1:n + 2] += b * poly[..., 0:n + 1]
            new[..., 2:n + 3] += poly[..., 0:n + 1]
            poly = new
            n += 2
        return poly

    fp = product(w[..., 0::2])
    fq = product(w[..., 1::2])
    P = np.concatenate([fp, np.zeros(batch + (1,))], -1) + np.concatenate([np.zeros(batch + (1,)), fp], -1)
    Q = np.concatenate([fq, np.zeros(batch + (1,))], -1) - np.concatenate([np.zeros(batch + (1,)), fq], -1)
    return (0.5 * (P + Q))[..., : p + 1]


def lsp_to_lpc_torch(lsp: torch.Tensor) -> torch.Tensor:
    """Differentiable :func:`lsp_to_lpc` for ``lsp`` (..., p) -> ``A(z)`` (..., p+1)."""
    p = lsp.shape[-1]
    if p < 2 or p % 2:
        raise ValueError(f"LSP conversion needs an even LPC order >= 2, got {p}")

    def product(angles: torch.Tensor) -> torch.Tensor:
        poly = torch.ones_like(angles[..., :1])
        for j in range(angles.shape[-1]):
            b = -2.0 * torch.cos(angles[..., j:j + 1])
            z1 = torch.zeros_like(poly[..., :1])
            shifted1 = torch.cat([z1, poly, z1], -1)
            shifted2 = torch.cat([z1, z1, poly], -1)
            poly = torch.cat([poly, z1, z1], -1) + b * shifted1 + shifted2
        return poly

    fp = product(lsp[..., 0::2])
    fq = product(lsp[..., 1::2])
    z = torch.zeros_like(fp[..., :1])
    P = torch.cat([fp, z], -1) + torch.cat([z, fp], -1)
    Q = torch.cat([fq, z], -1) - torch.cat([z, fq], -1)
    return (0.5 * (P + Q))[..., : p + 1]


def stabilize_lsp(lsp: np.ndarray, min_gap: float) -> np.ndarray:
    """Sort LSPs and push them apart to at least ``min_gap`` radians, inside
    ``[min_gap, pi - min_gap]``, so that ``A(z)`` is minimum phase (as AMR-WB's minimum ISP
    distance).  ``w'_k = max(w_k, w'_{k-1} + gap)`` then ``w''_k = min(w'_k, pi - (p-k) gap)``."""
    w = np.sort(np.asarray(lsp, dtype=np.float64), axis=-1)
    p = w.shape[-1]
    if not 0.0 <= min_gap * (p + 1) < math.pi:
        raise ValueError("min_gap is too large for this LPC order")
    k = np.arange(1, p + 1, dtype=np.float64)
    lifted = np.maximum.accumulate(np.maximum(w - k * min_gap, 0.0), axis=-1) + k * min_gap
    return np.minimum(lifted, math.pi - (p + 1 - k) * min_gap)


def stabilize_lsp_torch(lsp: torch.Tensor, min_gap: float) -> torch.Tensor:
    """Differentiable :func:`stabilize_lsp` (sort, cumulative max, clamp)."""
    w = torch.sort(lsp, dim=-1).values
    p = w.shape[-1]
    if not 0.0 <= min_gap * (p + 1) < math.pi:
        raise ValueError("min_gap is too large for this LPC order")
    k = torch.arange(1, p + 1, dtype=w.dtype, device=w.device)
    lifted = torch.cummax((w - k * min_gap).clamp_min(0.0), dim=-1).values + k * min_gap
    return torch.minimum(lifted, math.pi - (p + 1 - k) * min_gap)


def is_minimum_phase(a: np.ndarray) -> np.ndarray:
    """Whether every ``A(z)`` (..., p+1) has all zeros strictly inside the unit circle
    (via the step-down recursion: all reflection coefficients of magnitude < 1)."""
    a = np.asarray(a, dtype=np.float64)
    out = np.ones(a.shape[:-1], dtype=bool)
    cur = a / a[..., :1]
    for i in range(a.shape[-1] - 1, 0, -1):
        k = cur[..., i]
        out &= np.abs(k) < 1.0
        denom = np.where(np.abs(k) < 1.0, 1.0 - k * k, 1.0)
        cur = (cur[..., : i] - k[..., None] * cur[..., i:0:-1]) / denom[..., None]
    return out


def bandwidth_expand(a: np.ndarray, gamma) -> np.ndarray:
    """``a_i gamma^i``: moves every zero of ``A(z)`` radially by the factor ``gamma``
    (``gamma`` a scalar or one value per filter)."""
    a = np.asarray(a, dtype=np.float64)
    g = np.asarray(gamma, dtype=np.float64)[..., None]
    return a * g ** np.arange(a.shape[-1])


def stability_factors(a: np.ndarray, gamma: float = 0.94, max_steps: int = 60) -> np.ndarray:
    """Per filter, the largest ``gamma**n`` (n = 0, 1, ...) for which
    ``bandwidth_expand(a, gamma**n)`` is minimum phase (1.0 for filters that already are).

    Strictly interlaced LSPs give a minimum-phase ``A`` in exact arithmetic, but when many
    LSPs crowd together the float64 polynomial expansion can put zeros slightly outside the
    unit circle; this deterministic fallback (AMR-WB style bandwidth expansion) guards the
    synthesis filter of the decoder.
    """
    a = np.asarray(a, dtype=np.float64)
    f = np.ones(a.shape[:-1])
    bad = ~is_minimum_phase(a)
    n = 0
    while bad.any() and n < max_steps:
        n += 1
        f = np.where(bad, gamma ** n, f)
        bad = ~is_minimum_phase(bandwidth_expand(a, f))
    if bad.any():
        raise ValueError("could not stabilise an LPC filter by bandwidth expansion")
    return f


# ---------------------------------------------------------------------------------------
# residual filtering and synthesis (zhen2020 §3.1, Fig. 3b)
# ---------------------------------------------------------------------------------------
def _check_segments(num_samples: int, a_shape: tuple[int, ...], segment_length: int) -> int:
    nseg = a_shape[-2]
    if num_samples != nseg * segment_length:
        raise ValueError(f"signal of {num_samples} samples does not match {nseg} segments of {segment_length}")
    return nseg


def lpc_residual(s: np.ndarray, a: np.ndarray, segment_length: int = 512, subframe_length: int = 128) -> np.ndarray:
    """LPC residual of ``s`` (..., T) with per-segment filters ``a`` (..., T/L, p+1), float64.

    Segment ``k`` (samples ``[kL, (k+1)L)``) is decomposed into the overlapping sub-frames
    of Fig. 3b; each sub-frame's residual ``e_j[t] = sum_i a_k[i] s[t-i]`` (with the true
    signal history, zero before ``t = 0``) is windowed and overlap-added.  The windows sum to
    one (:func:`subframe_window_sum`), so with one filter per segment this equals filtering
    the segment, and :func:`lpc_synthesis` inverts it exactly.
    """
    s = np.asarray(s, dtype=np.float64)
    a = np.asarray(a, dtype=np.float64)
    nseg = _check_segments(s.shape[-1], a.shape, segment_length)
    p = a.shape[-1] - 1
    sp = np.pad(s, [(0, 0)] * (s.ndim - 1) + [(p, 0)])
    seg = np.zeros(s.shape[:-1] + (nseg, segment_length))
    for i in range(p + 1):
        shifted = sp[..., p - i: p - i + s.shape[-1]].reshape(s.shape[:-1] + (nseg, segment_length))
        seg += a[..., i:i + 1] * shifted
    # Fig. 3b: windowed sub-frames, overlap-added (weights sum to one)
    seg = seg * subframe_window_sum(segment_length, subframe_length)
    return seg.reshape(s.shape)


def lpc_synthesis(e: np.ndarray, a: np.ndarray, segment_length: int = 512,
                  history: np.ndarray | None = None) -> np.ndarray:
    """All-pole synthesis ``s[t] = e[t] - sum_{i>=1} a_k[i] s[t-i]`` of ``e`` (T,) with
    per-segment filters ``a`` (T/L, p+1), the state (last ``p`` outputs) carried across
    segments; ``history`` gives the outputs before ``t = 0`` (zeros by default).  Exact
    inverse of :func:`lpc_residual`.  Float64, one ``scipy.signal.lfilter`` per segment."""
    e = np.asarray(e, dtype=np.float64)
    a = np.asarray(a, dtype=np.float64)
    if e.ndim != 1 or a.ndim != 2:
        raise ValueError("lpc_synthesis works on one signal (T,) with coefficients (T/L, p+1)")
    nseg = _check_segments(e.shape[-1], a.shape, segment_length)
    p = a.shape[-1] - 1
    out = np.empty_like(e)
    past = np.zeros(p) if history is None else np.asarray(history, dtype=np.float64)[-p:]
    for k in range(nseg):
        sl = slice(k * segment_length, (k + 1) * segment_length)
        zi = scipy.signal.lfiltic([1.0], a[k], past[::-1])
        out[sl], _ = scipy.signal.lfilter([1.0], a[k], e[sl], zi=zi)
        tail = out[max(0, sl.stop - p): sl.stop]
        past = np.concatenate([past, tail])[-p:]
    return out


def lpc_residual_torch(s: torch.Tensor, a: torch.Tensor, segment_length: int = 512,
                       subframe_length: int = 128) -> torch.Tensor:
    """Differentiable :func:`lpc_residual`: ``s`` (B, T), ``a`` (B, T/L, p+1) -> (B, T)."""
    B, T = s.shape
    nseg = _check_segments(T, tuple(a.shape), segment_length)
    p = a.shape[-1] - 1
    sp = F.pad(s, (p, 0))
    seg = torch.zeros(B, nseg, segment_length, dtype=s.dtype, device=s.device)
    for i in range(p + 1):
        seg = seg + a[..., i:i + 1] * sp[:, p - i: p - i + T].reshape(B, nseg, segment_length)
    wsum = torch.as_tensor(subframe_window_sum(segment_length, subframe_length), dtype=s.dtype, device=s.device)
    return (seg * wsum).reshape(B, T)


def _polymul(x: torch.Tensor, y: torch.Tensor, n: int) -> torch.Tensor:
    """First ``n`` coefficients of the product of power series ``x`` and ``y`` (last axis)."""
    m = x.shape[-1] + y.shape[-1] - 1
    nfft = 1 << max(1, (m - 1).bit_length())
    out = torch.fft.irfft(torch.fft.rfft(x, nfft) * torch.fft.rfft(y, nfft), nfft)[..., :n]
    if out.shape[-1] < n:
        out = F.pad(out, (0, n - out.shape[-1]))
    return out


def impulse_response_torch(a: torch.Tensor, length: int) -> torch.Tensor:
    """First ``length`` samples of the impulse response of ``1/A(z)`` for ``a`` (..., p+1).

    Computed as the power-series inverse of ``A`` by Newton iteration
    ``h <- h (2 - A h) mod z^(2n)`` (doubling the number of correct terms each step), with
    FFT products; differentiable with respect to ``a``.
    """
    h = torch.ones_like(a[..., :1]) / a[..., :1]
    n = 1
    while n < length:
        n = min(2 * n, length)
        ah = _polymul(a[..., :n], h, n)
        corr = -ah
        corr = torch.cat([corr[..., :1] + 2.0, corr[..., 1:]], dim=-1)
        h = _polymul(h, corr, n)
    return h


def lpc_synthesis_torch(e: torch.Tensor, a: torch.Tensor, segment_length: int = 512) -> torch.Tensor:
    """Differentiable :func:`lpc_synthesis` for ``e`` (B, T), ``a`` (B, T/L, p+1), zero history.

    Within segment ``k`` the output is the impulse response ``h_k`` of ``1/A_k`` (see
    :func:`impulse_response_torch`) convolved with the excitation plus the "initial-state
    excitation" ``e'_k[t] = -sum_{i>t} a_k[i] s[kL + t - i]`` (``t < p``) that carries the
    previous segment's last ``p`` outputs; only this small term is sequential over segments.
    """
    B, T = e.shape
    L = segment_length
    nseg = _check_segments(T, tuple(a.shape), L)
    p = a.shape[-1] - 1
    h = impulse_response_torch(a, L)  # (B, nseg, L)
    nfft = 1 << (2 * L - 1).bit_length()
    Hf = torch.fft.rfft(h, nfft)
    zero_state = torch.fft.irfft(Hf * torch.fft.rfft(e.reshape(B, nseg, L), nfft), nfft)[..., :L]
    # e'[t] = -sum_{i=t+1}^{p} a_i prev[p + t - i], as a masked (p x p) gather
    t_idx = torch.arange(p, device=e.device)[:, None]
    i_idx = torch.arange(1, p + 1, device=e.device)[None, :]
    mask = (i_idx > t_idx).to(e.dtype)
    prev_idx = (p + t_idx - i_idx).clamp(0, p - 1)
    outs = []
    prev = torch.zeros(B, p, dtype=e.dtype, device=e.device)  # s[kL-p .. kL-1]
    for k in range(nseg):
        ak = a[:, k, 1:]  # (B, p): a_1..a_p
        e_init = -(ak[:, None, :] * prev[:, prev_idx] * mask).sum(-1)  # (B, p)
        init_resp = torch.fft.irfft(Hf[:, k] * torch.fft.rfft(e_init, nfft), nfft)[..., :L]
        yk = zero_state[:, k] + init_resp
        outs.append(yk)
        prev = yk[:, L - p:] if L >= p else torch.cat([prev, yk], -1)[:, -p:]
    return torch.cat(outs, dim=-1)
