"""EnCodec's training objective (defossez2022 §3.4): reconstruction losses, the MS-STFT
discriminator with hinge and relative feature-matching losses, and the loss balancer (Eq. 5).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import weight_norm

from ..dsp.mel import MelSpectrogram


class MultiScaleMelLoss(nn.Module):
    """Eq. 1: ``1/(|alpha| |e|) sum_i ||S_i(x) - S_i(y)||_1 + alpha_i ||S_i(x) - S_i(y)||_2`` over
    64-bin mel spectrograms of a normalised STFT with windows ``2^i``, ``i = 5..11``, hop a quarter
    window, ``alpha_i = 1`` (the norms are taken as means over bins and frames, and the L2 term as a
    mean squared error).  ``log``: compare ``log10(max(S, 1e-5))`` instead of ``S`` (the paper does
    not say; log magnitudes weigh quiet bands more, which short runs need)."""

    def __init__(self, sample_rate: int, scales: Sequence[int] = range(5, 12), n_mels: int = 64, log: bool = False):
        super().__init__()
        self.mels = nn.ModuleList([MelSpectrogram(sample_rate, 2 ** i, 2 ** i // 4, n_mels=n_mels, log=log)
                                   for i in scales])

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        total = x.new_zeros(())
        for mel in self.mels:
            a, b = mel(x), mel(y)
            total = total + F.l1_loss(b, a) + F.mse_loss(b, a)
        return total / len(self.mels)


class StftDiscriminator(nn.Module):
    """One MS-STFT sub-discriminator (Fig. 2): complex STFT (real and imaginary parts as channels),
    a 3x8 2-D convolution, three 3x8 convolutions with time dilations 1, 2, 4 and frequency stride
    2, a 3x3 convolution, then a 3x3 convolution to one output map; weight norm, LeakyReLU(0.2).
    Returns the logits map and the feature maps of every layer (for feature matching)."""

    def __init__(self, n_fft: int, channels: int = 32, in_channels: int = 1, dilations=(1, 2, 4)):
        super().__init__()
        self.n_fft = n_fft
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        layers = [weight_norm(nn.Conv2d(2 * in_channels, channels, (3, 8), padding=(1, 3)))]
        for d in dilations:
            layers.append(weight_norm(nn.Conv2d(channels, channels, (3, 8), stride=(2, 1), dilation=(1, d),
                                                padding=(1, (7 * d) // 2))))
        layers.append(weight_norm(nn.Conv2d(channels, channels, (3, 3), padding=(1, 1))))
        self.convs = nn.ModuleList(layers)
        self.out = weight_norm(nn.Conv2d(channels, 1, (3, 3), padding=(1, 1)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        b, c, t = x.shape
        if x.dtype in (torch.bfloat16, torch.float16):  # cuFFT has no bf16 (train.amp=bf16): STFT in float32
            x = x.float()
        spec = torch.stft(x.reshape(b * c, t), self.n_fft, self.n_fft // 4, window=self.window,
                          normalized=True, center=True, return_complex=True)
        z = torch.cat([spec.real, spec.imag], dim=0).view(2, b, c, *spec.shape[-2:])
        z = z.permute(1, 2, 0, 4, 3).reshape(b, 2 * c, spec.shape[-1], spec.shape[-2])  # (B, 2C, time, freq)
        z = z.transpose(2, 3)  # (B, 2C, freq, time)
        feats = []
        for conv in self.convs:
            z = F.leaky_relu(conv(z), 0.2)
            feats.append(z)
        return self.out(z), feats


class MsStftDiscriminator(nn.Module):
    """Five STFT sub-discriminators with windows 2048, 1024, 512, 256, 128 (§3.4)."""

    def __init__(self, n_ffts: Sequence[int] = (2048, 1024, 512, 256, 128), channels: int = 32, in_channels: int = 1):
        super().__init__()
        self.discs = nn.ModuleList([StftDiscriminator(n, channels, in_channels) for n in n_ffts])

    def forward(self, x: torch.Tensor) -> list[tuple[torch.Tensor, list[torch.Tensor]]]:
        return [d(x) for d in self.discs]


def discriminator_hinge_loss(real: Sequence[torch.Tensor], fake: Sequence[torch.Tensor]) -> torch.Tensor:
    """``L_d = 1/K sum_k max(0, 1 - D_k(x)) + max(0, 1 + D_k(x^))`` (means over each logits map)."""
    return sum(F.relu(1 - r).mean() + F.relu(1 + f).mean() for r, f in zip(real, fake)) / len(real)


def generator_hinge_loss(fake: Sequence[torch.Tensor]) -> torch.Tensor:
    """``l_g = 1/K sum_k max(0, 1 - D_k(x^))``."""
    return sum(F.relu(1 - f).mean() for f in fake) / len(fake)


def feature_matching_loss(real_feats: Sequence[Sequence[torch.Tensor]],
                          fake_feats: Sequence[Sequence[torch.Tensor]]) -> torch.Tensor:
    """Eq. 2: ``1/(KL) sum_k sum_l ||D_k^l(x) - D_k^l(x^)||_1 / mean(|D_k^l(x)|)``."""
    total, n = 0.0, 0
    for rf, ff in zip(real_feats, fake_feats):
        for r, f in zip(rf, ff):
            r = r.detach()
            total = total + (r - f).abs().mean() / (r.abs().mean() + 1e-8)
            n += 1
    return total / max(n, 1)


class Balancer:
    """The loss balancer of Eq. 5.  For losses ``l_i`` of the model output ``x^``, with
    ``g_i = dl_i/dx^`` and ``<||g_i||_2>_beta`` the EMA of its norm, the gradient sent back into the
    model is ``sum_i R * lambda_i / sum_j lambda_j * g_i / <||g_i||_2>_beta``.

    The EMA is bias-corrected (the average of the norms seen so far, weighted ``beta^age``), so the
    first step uses the first norm itself.  Norms are per-example L2 norms averaged over the batch.
    """

    def __init__(self, weights: Mapping[str, float], total_norm: float = 1.0, beta: float = 0.999,
                 eps: float = 1e-12):
        self.weights = dict(weights)
        self.total_norm, self.beta, self.eps = total_norm, beta, eps
        self.ema_sum: dict[str, float] = {}
        self.ema_count: dict[str, float] = {}

    def state_dict(self) -> dict:
        return {"ema_sum": dict(self.ema_sum), "ema_count": dict(self.ema_count)}

    def load_state_dict(self, state: Mapping) -> None:
        self.ema_sum = dict(state.get("ema_sum", {}))
        self.ema_count = dict(state.get("ema_count", {}))

    def combined_gradient(self, losses: Mapping[str, torch.Tensor], output: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """The gradient ``sum_i g~_i`` with respect to ``output`` (detached) and the norms seen."""
        norms, grads = {}, {}
        for name, loss in losses.items():
            (g,) = torch.autograd.grad(loss, [output], retain_graph=True)
            grads[name] = g
            norm = g.flatten(1).norm(dim=1).mean().item() if g.dim() > 1 else g.norm().item()
            norms[name] = norm
            self.ema_sum[name] = self.beta * self.ema_sum.get(name, 0.0) + norm
            self.ema_count[name] = self.beta * self.ema_count.get(name, 0.0) + 1.0
        total_w = sum(self.weights[n] for n in losses)
        out = torch.zeros_like(output)
        for name, g in grads.items():
            avg = self.ema_sum[name] / self.ema_count[name]
            out = out + self.total_norm * self.weights[name] / total_w * g / (avg + self.eps)
        return out.detach(), norms

    def backward_surrogate(self, losses: Mapping[str, torch.Tensor], output: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """A scalar whose gradient with respect to ``output`` is the balanced gradient (so the
        shared trainer's ``loss.backward()`` applies Eq. 5)."""
        g, norms = self.combined_gradient(losses, output)
        return (output * g).sum(), norms
