"""Mel filterbanks and log-mel spectrograms in numpy and torch (dsp layer).

The mel scale comes in two conventions:

* HTK (O'Shaughnessy 1987): ``mel(f) = 2595 * log10(1 + f / 700)``, so ``mel(1000 Hz) = 1000``;
* Slaney (Auditory Toolbox, 1998; librosa's default): linear below 1 kHz
  (``f / (200/3)``, i.e. 15 mel at 1 kHz) and logarithmic above, with a step of
  ``ln(6.4) / 27`` per mel.

Filters are triangles on the linear frequency axis whose corners are ``n_mels + 2`` points
equally spaced in mel between ``fmin`` and ``fmax``.  With ``norm="slaney"`` each triangle is
divided by half its width in Hz so that every filter has the same area (constant energy per
filter for white noise); with ``norm=None`` the peaks are 1 and neighbouring filters sum to
one between the first and the last centre frequency.

The log-mel spectrogram (:func:`log_mel_spectrogram`, :class:`MelSpectrogram`) follows the
reconstruction loss of EnCodec (defossez2022, §3.4, eq. 1): a mel spectrogram of a
*normalized* STFT (divided by the window's L2 norm, as torchaudio's ``normalized=True``)
with a hop of a quarter window, compressed with ``log10(max(S, floor))``.  The numpy and the
torch versions compute the same numbers (to float32 precision).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..errors import UserError

_F_SP = 200.0 / 3.0  # Slaney: Hz per mel in the linear part
_MIN_LOG_HZ = 1000.0  # Slaney: start of the logarithmic part
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP  # = 15 mel
_LOG_STEP = math.log(6.4) / 27.0  # Slaney: log-frequency step per mel above 1 kHz


def hz_to_mel(freq, htk: bool = False):
    """Frequency in Hz -> mel (HTK formula or Slaney's piecewise linear/log scale)."""
    f = np.asarray(freq, dtype=np.float64)
    if htk:
        return 2595.0 * np.log10(1.0 + f / 700.0)
    lin = f / _F_SP
    log = _MIN_LOG_MEL + np.log(np.maximum(f, _MIN_LOG_HZ) / _MIN_LOG_HZ) / _LOG_STEP
    return np.where(f >= _MIN_LOG_HZ, log, lin)


def mel_to_hz(mel, htk: bool = False):
    """Mel -> frequency in Hz, the inverse of :func:`hz_to_mel`."""
    m = np.asarray(mel, dtype=np.float64)
    if htk:
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    lin = _F_SP * m
    log = _MIN_LOG_HZ * np.exp(_LOG_STEP * (np.maximum(m, _MIN_LOG_MEL) - _MIN_LOG_MEL))
    return np.where(m >= _MIN_LOG_MEL, log, lin)


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, fmin: float = 0.0,
                   fmax: float | None = None, htk: bool = False,
                   norm: str | None = "slaney") -> np.ndarray:
    """Triangular mel filterbank, shape ``(n_mels, n_fft // 2 + 1)``, float32.

    Row ``m`` weights the rfft bins ``k * sample_rate / n_fft``: a triangle rising from
    corner ``m`` to corner ``m + 1`` and falling to corner ``m + 2``, where the corners are
    ``n_mels + 2`` points equally spaced on the mel scale from ``fmin`` to ``fmax``
    (default Nyquist).  ``norm="slaney"`` scales each triangle by ``2 / (f[m+2] - f[m])``
    (equal area); ``norm=None`` leaves peaks at 1.  Filters narrower than an FFT bin may be
    all zero (when ``n_mels`` is large for ``n_fft``).
    """
    if sample_rate <= 0 or n_fft < 2 or n_mels < 1:
        raise UserError(f"mel filterbank needs sample_rate > 0, n_fft >= 2 and n_mels >= 1 "
                        f"(got {sample_rate}, {n_fft}, {n_mels})")
    nyquist = sample_rate / 2.0
    fmax = nyquist if fmax is None else float(fmax)
    if not (0.0 <= fmin < fmax <= nyquist):
        raise UserError(f"mel filterbank needs 0 <= fmin < fmax <= {nyquist:g} Hz "
                        f"(got fmin={fmin:g}, fmax={fmax:g})")
    if norm not in ("slaney", None):
        raise UserError(f"mel filterbank norm must be 'slaney' or None, not {norm!r}")
    bins = np.linspace(0.0, nyquist, n_fft // 2 + 1)
    corners = mel_to_hz(np.linspace(hz_to_mel(fmin, htk), hz_to_mel(fmax, htk), n_mels + 2), htk)
    lo, mid, hi = corners[:-2, None], corners[1:-1, None], corners[2:, None]
    rising = (bins[None, :] - lo) / (mid - lo)
    falling = (hi - bins[None, :]) / (hi - mid)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    if norm == "slaney":
        weights *= 2.0 / (hi - lo)
    return weights.astype(np.float32)


def _check_stft_args(n_fft: int, hop_length: int | None, win_length: int | None) -> tuple[int, int]:
    hop = n_fft // 4 if hop_length is None else int(hop_length)
    win = n_fft if win_length is None else int(win_length)
    if hop < 1 or not (1 <= win <= n_fft):
        raise UserError(f"STFT needs hop_length >= 1 and 1 <= win_length <= n_fft "
                        f"(got n_fft={n_fft}, hop_length={hop}, win_length={win})")
    return hop, win


def _padded_window(n_fft: int, win_length: int) -> np.ndarray:
    """Periodic Hann window of ``win_length`` zero-padded (centred) to ``n_fft``."""
    n = np.arange(win_length)
    win = 0.5 - 0.5 * np.cos(2.0 * np.pi * n / win_length)
    left = (n_fft - win_length) // 2
    out = np.zeros(n_fft)
    out[left:left + win_length] = win
    return out


def _center_pad_mode(num_samples: int, n_fft: int) -> str:
    """Reflect padding when the signal is long enough for it, zeros otherwise."""
    return "reflect" if num_samples > n_fft // 2 else "constant"


def log_mel_spectrogram(x: np.ndarray, sample_rate: int, n_fft: int, hop_length: int | None = None,
                        win_length: int | None = None, n_mels: int = 64, fmin: float = 0.0,
                        fmax: float | None = None, power: float = 1.0, normalized: bool = True,
                        log: bool = True, floor: float = 1e-5, center: bool = True,
                        htk: bool = False, norm: str | None = "slaney") -> np.ndarray:
    """(Log-)mel spectrogram of ``x`` (shape ``(..., samples)``) -> ``(..., n_mels, frames)``.

    STFT with a periodic Hann window, hop ``n_fft // 4`` by default, centred frames
    (reflect padding); ``normalized`` divides the STFT by the window's L2 norm.  The mel
    filterbank of :func:`mel_filterbank` is applied to ``|STFT| ** power`` and, when ``log``,
    the result is ``log10(max(mel, floor))`` (EnCodec §3.4).  Float64 internally, float32 out.
    """
    hop, win_len = _check_stft_args(n_fft, hop_length, win_length)
    x = np.asarray(x, dtype=np.float64)
    if center:
        pad = [(0, 0)] * (x.ndim - 1) + [(n_fft // 2, n_fft // 2)]
        x = np.pad(x, pad, mode=_center_pad_mode(x.shape[-1], n_fft))
    if x.shape[-1] < n_fft:
        x = np.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, n_fft - x.shape[-1])])
    window = _padded_window(n_fft, win_len)
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft, axis=-1)[..., ::hop, :]
    spec = np.abs(np.fft.rfft(frames * window, axis=-1))
    if normalized:
        spec /= np.sqrt(np.sum(window ** 2))
    if power != 1.0:
        spec = spec ** power
    fb = mel_filterbank(sample_rate, n_fft, n_mels, fmin, fmax, htk, norm).astype(np.float64)
    mel = spec @ fb.T  # (..., frames, n_mels)
    if log:
        mel = np.log10(np.maximum(mel, floor))
    return np.ascontiguousarray(np.swapaxes(mel.astype(np.float32), -1, -2))


class MelSpectrogram(nn.Module):
    """Torch (log-)mel spectrogram, differentiable; same definition as :func:`log_mel_spectrogram`.

    ``forward(x)`` maps ``(..., samples)`` to ``(..., n_mels, frames)``.  The window and the
    filterbank are buffers, so ``.to(device)`` moves them.  Used for mel reconstruction
    losses (EnCodec §3.4, eq. 1) and mel features.
    """

    def __init__(self, sample_rate: int, n_fft: int, hop_length: int | None = None,
                 win_length: int | None = None, n_mels: int = 64, fmin: float = 0.0,
                 fmax: float | None = None, power: float = 1.0, normalized: bool = True,
                 log: bool = True, floor: float = 1e-5, center: bool = True,
                 htk: bool = False, norm: str | None = "slaney") -> None:
        super().__init__()
        self.hop_length, self.win_length = _check_stft_args(n_fft, hop_length, win_length)
        self.sample_rate, self.n_fft, self.n_mels = int(sample_rate), int(n_fft), int(n_mels)
        self.power, self.normalized, self.log = float(power), bool(normalized), bool(log)
        self.floor, self.center = float(floor), bool(center)
        window = _padded_window(self.n_fft, self.win_length)
        self.register_buffer("window", torch.tensor(window, dtype=torch.float32), persistent=False)
        self.register_buffer("scale", torch.tensor(1.0 / np.sqrt(np.sum(window ** 2)), dtype=torch.float32),
                             persistent=False)
        fb = mel_filterbank(sample_rate, n_fft, n_mels, fmin, fmax, htk, norm)
        self.register_buffer("filterbank", torch.from_numpy(fb), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        x = x.reshape(-1, shape[-1])
        if x.dtype in (torch.bfloat16, torch.float16):  # cuFFT has no bf16; fp16 needs power-of-2 sizes
            x = x.float()
        if self.center:
            p = self.n_fft // 2
            mode = _center_pad_mode(x.shape[-1], self.n_fft)
            x = F.pad(x[:, None, :], (p, p), mode=mode)[:, 0, :]
        if x.shape[-1] < self.n_fft:
            x = F.pad(x, (0, self.n_fft - x.shape[-1]))
        spec = torch.stft(x, self.n_fft, hop_length=self.hop_length, win_length=self.n_fft,
                          window=self.window.to(x.dtype), center=False, return_complex=True).abs()
        if self.normalized:
            spec = spec * self.scale.to(spec.dtype)
        if self.power != 1.0:
            spec = spec ** self.power
        mel = torch.matmul(self.filterbank.to(spec.dtype), spec)
        if self.log:
            mel = torch.log10(mel.clamp(min=self.floor))
        return mel.reshape(shape[:-1] + mel.shape[-2:])
