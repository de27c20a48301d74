"""Fully factorized non-parametric density (FEM) of Ballé et al. 2018 (entropy layer).

byun2023 §3.2.1 / Fig. 2(a), after Ballé, Minnen, Singh, Hwang & Johnston (ICLR 2018, "Variational
image compression with a scale hyperprior", Appendix 6.1): each channel has its own cumulative
distribution ``c(x)``, a composition of ``K = 4`` layers ``f_k(x) = g_k(softplus(H_k) x + b_k)``
with ``g_k(x) = x + tanh(a_k) * tanh(x)`` for the first ``K - 1`` layers and a sigmoid at the end.
``softplus(H_k) >= 0`` and ``tanh(a_k) > -1`` make every layer (and hence ``c``) monotone
increasing; with filters ``(1, 3, 3, 3, 1)`` a channel has 43 parameters (the paper's count).

The likelihood of an integer (or noisy) value is the mass of the unit interval around it,
``c(x + 1/2) - c(x - 1/2)``, computed on logits with the sign trick for precision in the tails.
:meth:`FactorizedDensity.tables` tabulates the PMF of each channel into integer CDFs
(:mod:`.tables`) over the range where the density has mass, for range coding.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from .tables import TableSet, build_tables

__all__ = ["FactorizedDensity", "LIKELIHOOD_FLOOR"]

#: likelihoods are floored here (as CompressAI's ``likelihood_lower_bound``)
LIKELIHOOD_FLOOR = 1e-9


class FactorizedDensity(nn.Module):
    """Per-channel monotone CDF ``c(x)`` of ``(batch, channels, time)`` tensors (Ballé 2018)."""

    def __init__(self, channels: int, filters=(3, 3, 3), init_scale: float = 10.0):
        super().__init__()
        self.channels = int(channels)
        dims = (1, *filters, 1)
        scale = init_scale ** (1.0 / (len(dims) - 1))
        self.matrices = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.factors = nn.ParameterList()
        for i in range(len(dims) - 1):
            init = math.log(math.expm1(1.0 / scale / dims[i + 1]))
            self.matrices.append(nn.Parameter(torch.full((channels, dims[i + 1], dims[i]), init)))
            self.biases.append(nn.Parameter(torch.rand(channels, dims[i + 1], 1) - 0.5))
            if i < len(dims) - 2:
                self.factors.append(nn.Parameter(torch.zeros(channels, dims[i + 1], 1)))

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """``f_K(...f_1(x))`` before the final sigmoid; ``x``: ``(channels, 1, N)``."""
        h = x
        n = len(self.matrices)
        for i in range(n):
            h = torch.matmul(F.softplus(self.matrices[i]), h) + self.biases[i]
            if i < n - 1:
                h = h + torch.tanh(self.factors[i]) * torch.tanh(h)
        return h

    def cdf(self, x: torch.Tensor) -> torch.Tensor:
        """``c(x)`` of ``(batch, channels, time)`` values, in (0, 1)."""
        return torch.sigmoid(self._per_channel(self.logits, x))

    def _per_channel(self, fn, x: torch.Tensor) -> torch.Tensor:
        b, c, t = x.shape
        flat = x.permute(1, 0, 2).reshape(c, 1, b * t)
        return fn(flat).reshape(c, b, t).permute(1, 0, 2)

    def likelihood(self, x: torch.Tensor, half_width: float = 0.5) -> torch.Tensor:
        """``c(x + h) - c(x - h)`` per element, ``h = half_width`` (1/2: the unit bin of an integer;
        a quantizer of step ``1/g`` uses ``h = 1/(2g)``), floored at :data:`LIKELIHOOD_FLOOR`."""
        def fn(flat):
            lo, up = self.logits(flat - half_width), self.logits(flat + half_width)
            sign = -torch.sign(lo + up).detach()
            return torch.abs(torch.sigmoid(sign * up) - torch.sigmoid(sign * lo))
        return torch.clamp(self._per_channel(fn, x), min=LIKELIHOOD_FLOOR)

    @torch.no_grad()
    def quantiles(self, probs=(1e-9, 0.5, 1 - 1e-9), lo: float = -1e4, hi: float = 1e4) -> torch.Tensor:
        """Per-channel values where ``c`` equals ``probs`` (bisection), shape ``(channels, len(probs))``."""
        dev, dt = self.matrices[0].device, self.matrices[0].dtype
        target = torch.logit(torch.tensor(probs, dtype=torch.float64, device="cpu")).to(dt)
        out = torch.empty(self.channels, len(probs), dtype=dt, device="cpu")  # the result is always on the CPU
        for j, t in enumerate(target.tolist()):
            a = torch.full((self.channels, 1, 1), lo, dtype=dt, device=dev)
            b = torch.full((self.channels, 1, 1), hi, dtype=dt, device=dev)
            for _ in range(60):
                m = 0.5 * (a + b)
                below = self.logits(m) < t
                a = torch.where(below, m, a)
                b = torch.where(below, b, m)
            out[:, j] = (0.5 * (a + b)).flatten().cpu()
        return out

    @torch.no_grad()
    def tables(self, max_width: int = 4096, scale: float = 1.0, float64: bool = False) -> TableSet:
        """Integer CDF tables (one row per channel) of ``round(scale * x)`` over
        ``[floor(q_lo), ceil(q_hi)]`` of the scaled ``1e-9`` / ``1 - 1e-9`` quantiles, with the
        mass outside as the escape probability.  ``float64``: evaluate the density on a float64
        copy of the parameters (tables built at run time on both ends of a stream, where a
        float32 rounding difference between machines must not move an integer CDF entry)."""
        if float64 and self.matrices[0].dtype != torch.float64:
            import copy

            return copy.deepcopy(self).double().tables(max_width, scale)
        q = self.quantiles((1e-9, 1 - 1e-9)) * scale
        pmfs, offsets, tails = [], [], []
        for c in range(self.channels):
            lo = int(math.floor(float(q[c, 0])))
            hi = int(math.ceil(float(q[c, 1])))
            if hi - lo + 1 > max_width:
                mid = (lo + hi) // 2
                lo, hi = mid - max_width // 2, mid - max_width // 2 + max_width - 1
            vals = torch.arange(lo, hi + 1, dtype=self.matrices[0].dtype, device=self.matrices[0].device).view(1, 1, -1)
            grid = vals.expand(self.channels, 1, -1)
            cu = torch.sigmoid(self.logits((grid + 0.5) / scale))[c, 0].double().cpu()
            cl = torch.sigmoid(self.logits((grid - 0.5) / scale))[c, 0].double().cpu()
            pmf = (cu - cl).numpy()
            tail = float(cl[0] + (1.0 - cu[-1]))
            pmfs.append(pmf)
            offsets.append(lo)
            tails.append(tail)
        return build_tables(pmfs, offsets, tails)
