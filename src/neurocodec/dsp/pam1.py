"""MPEG-1 psychoacoustic model 1 (PAM-1) as a PyTorch module, and the NMR losses of byun2023.

PAM-1 (ISO/IEC 11172-3 Annex D, model 1; in the formulation of Painter & Spanias, "Perceptual
coding of digital audio", Proc. IEEE 2000, §III-A/§V) computes a global masking threshold per
frame in five steps, all implemented here on batches of frames ``(B, N)``:

1. **Spectrum**: ``P(k) = PN + 10 log10 |sum_n w(n) x(n) e^{-j 2 pi k n / N} / N|^2`` with a Hann
   window ``w`` and ``PN = 90.302 dB`` (full-scale input ``[-1, 1]``).
2. **Tonal maskers**: local maxima ``P(k) > P(k +- 1)`` that exceed ``P(k +- dk) + 7 dB`` for
   every ``dk`` in the neighbourhood ``{2}`` below 5.5 kHz, ``{2, 3}`` below 11 kHz, ``{2..6}``
   above (the frequency limits of the standard's bin ranges at 44.1 kHz/N = 512), with power
   ``10 log10`` of the sum over ``k - 1, k, k + 1``.  **Non-tonal maskers**: the power of each
   critical band (one Bark wide) outside the tonal maskers' neighbourhoods, placed at the bin
   nearest the band's geometric-mean frequency.
3. **Decimation**: maskers below the absolute threshold ``Tq`` are dropped, then of two maskers
   within 0.5 Bark the weaker is dropped.
4. **Individual thresholds**: ``T_TM(i, j) = P_TM(j) - 0.275 z(j) + SF(i, j) - 6.025`` and
   ``T_NM(i, j) = P_NM(j) - 0.175 z(j) + SF(i, j) - 2.025`` with the spreading function
   ``SF = 17 dz - 0.4 P + 11`` (``-3 <= dz < -1``), ``(0.4 P + 6) dz`` (``-1 <= dz < 0``),
   ``-17 dz`` (``0 <= dz < 1``), ``-(dz - 1)(17 - 0.15 P) - 17`` (``1 <= dz < 8``), where
   ``dz = z(i) - z(j)`` in Bark (``z(f) = 13 atan(0.00076 f) + 3.5 atan((f / 7500)^2)``).
5. **Global threshold**: the power sum of ``Tq`` and all individual thresholds.

The *noise-to-mask ratio losses* of byun2023 §3.3 (after Byun et al., Interspeech 2022) compare
the spectrum of the coding noise ``x_hat - x`` with the clean frame's threshold in mel bands:
``nmr_loss`` = mean over bands of ``log2(1 + N_b / M_b)`` (noise and mask powers summed in each
band of 16-, 32- and 64-band mel filterbanks, averaged over the three).  The exact NMR formula
of [12] is not given in byun2023; this bounded log form is our choice (it stops rewarding noise
pushed far below the mask).  :class:`PerceptualLoss` gives the global term (one 512-sample
frame) and the local term (seven 128-sample subframes with 50 % overlap).  Thresholds depend only
on the clean input and are computed without gradients.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .mel import mel_filterbank

__all__ = ["bark", "absolute_threshold_db", "spreading_db", "PsychoacousticModel1", "PamResult",
           "PerceptualLoss", "POWER_NORM_DB"]

#: power normalization of the spectrum (Painter & Spanias eq. 18)
POWER_NORM_DB = 90.302
_TONAL_DB = 7.0


def bark(f):
    """Critical-band rate (Bark) of frequencies in Hz (Zwicker & Terhardt)."""
    f = np.asarray(f, dtype=np.float64)
    return 13.0 * np.arctan(0.00076 * f) + 3.5 * np.arctan((f / 7500.0) ** 2)


def absolute_threshold_db(f):
    """Threshold in quiet (dB SPL) of frequencies in Hz (Terhardt; Painter & Spanias eq. 1)."""
    k = np.maximum(np.asarray(f, dtype=np.float64), 20.0) / 1000.0
    return 3.64 * k ** -0.8 - 6.5 * np.exp(-0.6 * (k - 3.3) ** 2) + 1e-3 * k ** 4


def spreading_db(dz, power_db):
    """PAM-1 spreading function ``SF(dz, P)`` in dB (``-inf`` outside ``-3 <= dz < 8``)."""
    dz = dz if isinstance(dz, torch.Tensor) else torch.as_tensor(dz)
    p = power_db if isinstance(power_db, torch.Tensor) else torch.as_tensor(power_db, device=dz.device)
    neg_inf = torch.full_like(dz * p, -math.inf)
    sf = torch.where((dz >= -3) & (dz < -1), 17 * dz - 0.4 * p + 11, neg_inf)
    sf = torch.where((dz >= -1) & (dz < 0), (0.4 * p + 6) * dz, sf)
    sf = torch.where((dz >= 0) & (dz < 1), -17 * dz, sf)
    sf = torch.where((dz >= 1) & (dz < 8), -(dz - 1) * (17 - 0.15 * p) - 17, sf)
    return sf


@dataclass
class PamResult:
    """Per-frame PAM-1 analysis; dB tensors ``(B, K)`` with ``K = N/2 + 1`` bins, ``-inf`` where
    there is no masker."""

    spectrum_db: torch.Tensor
    tonal_db: torch.Tensor
    noise_db: torch.Tensor
    threshold_db: torch.Tensor


class PsychoacousticModel1(nn.Module):
    """PAM-1 global masking threshold of frames of ``n_fft`` samples at ``sample_rate``."""

    def __init__(self, sample_rate: int = 16000, n_fft: int = 512):
        super().__init__()
        self.sample_rate, self.n_fft = int(sample_rate), int(n_fft)
        k = np.arange(n_fft // 2 + 1)
        f = k * sample_rate / n_fft
        z = bark(f)
        self.register_buffer("window", torch.hann_window(n_fft, periodic=True, dtype=torch.float64), persistent=False)
        self.register_buffer("z", torch.tensor(z), persistent=False)
        self.register_buffer("tq", torch.tensor(absolute_threshold_db(f)), persistent=False)
        # tonal neighbourhoods: 2 bins below 5.5 kHz, 2..3 below 11 kHz, 2..6 above
        reach = np.where(f < 5500, 2, np.where(f < 11000, 3, 6))
        self.register_buffer("reach", torch.tensor(reach), persistent=False)
        # critical bands: integer Bark intervals; non-tonal masker at the geometric-mean frequency
        band = np.floor(z).astype(np.int64)
        self.num_bands = int(band.max()) + 1
        centre = np.zeros(self.num_bands, dtype=np.int64)
        for b in range(self.num_bands):
            ks = k[(band == b) & (k > 0)]
            if ks.size == 0:
                ks = k[band == b]
            gm = np.exp(np.mean(np.log(np.maximum(ks, 1) * sample_rate / n_fft)))
            centre[b] = int(np.argmin(np.abs(f - gm)))
        self.register_buffer("band", torch.tensor(band), persistent=False)
        self.register_buffer("band_centre", torch.tensor(centre), persistent=False)

    def spectrum_db(self, x: torch.Tensor) -> torch.Tensor:
        """Normalized power spectrum (step 1) of frames ``(B, N)``, float64 dB."""
        spec = torch.fft.rfft(x.double() * self.window.to(x.device), dim=-1) / self.n_fft
        return POWER_NORM_DB + 10.0 * torch.log10(spec.real ** 2 + spec.imag ** 2 + 1e-30)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> PamResult:
        if x.shape[-1] != self.n_fft:
            raise ValueError(f"PAM-1 frames must have {self.n_fft} samples, got {x.shape[-1]}")
        p = self.spectrum_db(x.reshape(-1, self.n_fft))
        b, kk = p.shape
        dev = p.device  # every tensor made here follows the input (CPU, CUDA, ...)
        neg = torch.tensor(-math.inf, dtype=p.dtype, device=dev)
        pad = torch.full((b, 6), -math.inf, dtype=p.dtype, device=dev)
        pp = torch.cat([pad, p, pad], dim=1)
        shifted = {d: pp[:, 6 + d:6 + d + kk] for d in range(-6, 7)}
        tonal = (p > shifted[-1]) & (p >= shifted[1])
        for d in range(2, 7):
            need = self.reach >= d
            ok = (p - shifted[d] >= _TONAL_DB) & (p - shifted[-d] >= _TONAL_DB)
            tonal &= ok | ~need
        idx = torch.arange(kk, device=dev)
        tonal[:, 0] = False
        tonal[:, -1] = False
        lin = 10.0 ** (p / 10.0)
        lin_pad = torch.cat([torch.zeros(b, 1, dtype=p.dtype, device=dev), lin,
                             torch.zeros(b, 1, dtype=p.dtype, device=dev)], 1)
        tonal_power = 10.0 * torch.log10(lin_pad[:, :-2] + lin_pad[:, 1:-1] + lin_pad[:, 2:])
        tonal_db = torch.where(tonal, tonal_power, neg)
        # bins removed from the non-tonal sums: tonal maskers and their neighbourhoods
        covered = torch.zeros_like(tonal)
        for d in range(-6, 7):
            src = torch.roll(tonal, d, dims=1)
            if d > 0:
                src[:, :d] = False
            elif d < 0:
                src[:, d:] = False
            if abs(d) > 1:
                reach_ok = self.reach[(idx - d).clamp(0, kk - 1)] >= abs(d)
            else:
                reach_ok = torch.ones(kk, dtype=torch.bool, device=dev)
            covered |= src & reach_ok
        rest = torch.where(covered, torch.zeros_like(lin), lin)
        band_power = torch.zeros(b, self.num_bands, dtype=p.dtype, device=dev).index_add_(1, self.band, rest)
        noise_lin = torch.zeros(b, kk, dtype=p.dtype, device=dev).index_add_(1, self.band_centre, band_power)
        noise_db = torch.where(noise_lin > 0, 10.0 * torch.log10(noise_lin.clamp(min=1e-30)), neg)
        maskers = self._decimate(tonal_db, noise_db)
        thr = self._global_threshold(maskers)
        power, pos, kind = maskers
        inf = torch.full_like(p, -math.inf)
        kept_t = inf.scatter(1, pos, torch.where(kind, power, torch.full_like(power, -math.inf)))
        kept_n = inf.scatter(1, pos, torch.where(kind, torch.full_like(power, -math.inf), power))
        return PamResult(p, kept_t, kept_n, thr)

    def _maskers(self, tonal_db, noise_db):
        """The kept maskers of each frame as padded lists ``(B, M)``: power (dB, ``-inf`` for
        padding), bin index and kind (True: tonal)."""
        both = torch.maximum(tonal_db, noise_db)  # a bin holds at most one masker
        is_tonal = tonal_db >= noise_db
        finite = torch.isfinite(both)
        m = max(int(finite.sum(dim=1).max()), 1)
        order = torch.argsort((~finite).to(torch.int8), dim=1, stable=True)[:, :m]
        power = torch.gather(both, 1, order)
        kind = torch.gather(is_tonal, 1, order)
        return power, order, kind

    def _decimate(self, tonal_db, noise_db):
        """Step 3: drop maskers under ``Tq``, then the weaker of any two within 0.5 Bark
        (the lower bin wins a tie).  Returns the kept maskers as :meth:`_maskers` lists."""
        inf = torch.full_like(tonal_db, -math.inf)
        tonal_db = torch.where(tonal_db >= self.tq, tonal_db, inf)
        noise_db = torch.where(noise_db >= self.tq, noise_db, inf)
        power, pos, kind = self._maskers(tonal_db, noise_db)
        z = self.z[pos]  # (B, M)
        near = (z[:, :, None] - z[:, None, :]).abs() < 0.5
        mine, other = power[:, :, None], power[:, None, :]
        stronger = (other > mine) | ((other == mine) & (pos[:, None, :] < pos[:, :, None]))
        beaten = (near & stronger & torch.isfinite(other) & (pos[:, None, :] != pos[:, :, None])).any(dim=2)
        power = torch.where(beaten, torch.full_like(power, -math.inf), power)
        return power, pos, kind

    def _global_threshold(self, maskers):
        """Steps 4-5: individual thresholds and their power sum with ``Tq``."""
        power, pos, kind = maskers
        finite = torch.isfinite(power)
        pj = torch.where(finite, power, torch.zeros_like(power))[:, None, :]  # (B, 1, M)
        zj = self.z[pos][:, None, :]
        dz = self.z[None, :, None] - zj  # (B, K, M)
        sf = spreading_db(dz, pj)
        def pick(tonal, noise):  # float32 constants, as torch.where(kind, a, b) gives, on the input's device
            return torch.where(kind, torch.full_like(power, tonal, dtype=torch.float32),
                               torch.full_like(power, noise, dtype=torch.float32))[:, None, :]
        slope, offset = pick(0.275, 0.175), pick(6.025, 2.025)
        t = pj - slope * zj + sf - offset
        t = torch.where(finite[:, None, :], t, torch.full_like(t, -math.inf))
        total = 10.0 ** (self.tq / 10.0) + (10.0 ** (t / 10.0)).sum(dim=2)
        return 10.0 * torch.log10(total)


class PerceptualLoss(nn.Module):
    """Global and local NMR losses of byun2023 §3.3 on ``(B, 512)`` frames.

    ``global``: one PAM-1 analysis of the whole 512-sample frame; ``local``: seven 128-sample
    subframes, hop 64; each the mean over 16-, 32- and 64-band mel filterbanks of
    ``mean_b log2(1 + N_b / M_b)``."""

    def __init__(self, sample_rate: int = 16000, frame: int = 512, subframe: int = 128,
                 mel_bands=(16, 32, 64)):
        super().__init__()
        self.frame, self.subframe, self.hop = frame, subframe, subframe // 2
        self.pam_g = PsychoacousticModel1(sample_rate, frame)
        self.pam_l = PsychoacousticModel1(sample_rate, subframe)
        for name, n in (("g", frame), ("l", subframe)):
            banks = []
            for m in mel_bands:
                fb = mel_filterbank(sample_rate, n, m, norm=None)
                fb = fb[fb.sum(axis=1) > 0]
                banks.append(torch.tensor(fb, dtype=torch.float64))
            for i, fb in enumerate(banks):
                self.register_buffer(f"mel_{name}{i}", fb, persistent=False)
        self.num_banks = len(mel_bands)

    @torch.no_grad()
    def masks(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Linear-power global thresholds ``(B, 257)`` and local ``(B, 7, 65)`` of clean frames."""
        g = 10.0 ** (self.pam_g(x).threshold_db / 10.0)
        sub = x.unfold(-1, self.subframe, self.hop)  # (B, 7, 128)
        l = 10.0 ** (self.pam_l(sub.reshape(-1, self.subframe)).threshold_db / 10.0)
        return g, l.reshape(x.shape[0], sub.shape[1], -1)

    def _nmr(self, noise_frames: torch.Tensor, mask: torch.Tensor, pam: PsychoacousticModel1, name: str):
        spec = torch.fft.rfft(noise_frames.double() * pam.window.to(noise_frames.device), dim=-1) / pam.n_fft
        n = (spec.real ** 2 + spec.imag ** 2) * 10.0 ** (POWER_NORM_DB / 10.0)
        out = 0.0
        for i in range(self.num_banks):
            fb = getattr(self, f"mel_{name}{i}")
            nb = n @ fb.T
            mb = mask @ fb.T
            out = out + torch.log2(1.0 + nb / mb).mean(dim=-1)
        return out / self.num_banks

    def forward(self, x: torch.Tensor, x_hat: torch.Tensor, masks=None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(L_G, L_L)`` averaged over the batch of frames ``(B, 512)``."""
        g, l = self.masks(x) if masks is None else masks
        e = x_hat - x
        lg = self._nmr(e, g, self.pam_g, "g").mean()
        sub = e.unfold(-1, self.subframe, self.hop)
        ll = self._nmr(sub, l, self.pam_l, "l").mean()
        return lg.float(), ll.float()
