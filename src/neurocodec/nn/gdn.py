"""1-D generalized divisive normalization (GDN) and its inverse (nn layer).

GDN (Ballé, Laparra & Simoncelli 2016/2017, "End-to-end optimized image compression", eq. 6;
byun2023 §3.1 puts one at the end of every ResGLU block) normalizes channel ``i`` at each time
step by a weighted energy of all channels::

    y_i = x_i / sqrt(beta_i + sum_j gamma_ij * x_j**2)

``beta > 0`` and ``gamma >= 0`` are kept in range by the reparameterization of Ballé's
``NonNegativeParametrizer``: the stored parameter ``p`` maps to ``max(p, bound)**2 - pedestal``
with ``pedestal = 2**-36`` (i.e. ``offset**2`` with ``offset = 2**-18``), and the lower bound
``bound = sqrt(minimum + pedestal)``.  The bound's gradient is passed through when it pushes the
parameter back up (the straight-through lower bound of the same work), so a parameter that
hits it can leave it.

``GDN1d(inverse=True)`` is Ballé's approximate inverse (IGDN, ``x_i * sqrt(...)``) used in
decoders.  :meth:`GDN1d.invert` computes the *exact* inverse of the forward GDN: with
``u = x**2`` and ``v = y**2`` the definition gives the linear system
``(I - diag(v) gamma) u = v * beta`` per time step, solved here in float64.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["GDN1d", "NonNegative", "lower_bound"]

_PEDESTAL = 2.0 ** -36


class _LowerBound(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, bound):
        ctx.save_for_backward(x)
        ctx.bound = bound
        return torch.clamp(x, min=bound)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        pass_through = (x >= ctx.bound) | (grad < 0)
        return grad * pass_through.to(grad.dtype), None


def lower_bound(x: torch.Tensor, bound: float) -> torch.Tensor:
    """``max(x, bound)`` whose gradient still flows when it would raise ``x`` above the bound."""
    return _LowerBound.apply(x, float(bound))


class NonNegative(nn.Module):
    """Maps a free parameter to ``max(p, sqrt(minimum + pedestal))**2 - pedestal >= minimum``."""

    def __init__(self, minimum: float = 0.0):
        super().__init__()
        self.minimum = float(minimum)
        self.bound = (self.minimum + _PEDESTAL) ** 0.5

    def init(self, value: torch.Tensor) -> torch.Tensor:
        """The stored parameter that represents ``value``."""
        return torch.sqrt(torch.clamp(value + _PEDESTAL, min=_PEDESTAL))

    def forward(self, p: torch.Tensor) -> torch.Tensor:
        return lower_bound(p, self.bound) ** 2 - _PEDESTAL


class GDN1d(nn.Module):
    """GDN over the channels of ``(batch, channels, time)`` tensors (``inverse``: IGDN)."""

    def __init__(self, channels: int, inverse: bool = False, beta_min: float = 1e-6, gamma_init: float = 0.1):
        super().__init__()
        self.channels = int(channels)
        self.inverse = bool(inverse)
        self._beta = NonNegative(beta_min)
        self._gamma = NonNegative(0.0)
        self.beta = nn.Parameter(self._beta.init(torch.ones(channels)))
        self.gamma = nn.Parameter(self._gamma.init(gamma_init * torch.eye(channels)))

    def effective_beta(self) -> torch.Tensor:
        """``beta`` after reparameterization (all ``>= beta_min > 0``)."""
        return self._beta(self.beta)

    def effective_gamma(self) -> torch.Tensor:
        """``gamma`` after reparameterization (all ``>= 0``)."""
        return self._gamma(self.gamma)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        beta, gamma = self.effective_beta(), self.effective_gamma()
        norm = torch.nn.functional.conv1d(x * x, gamma[:, :, None], beta)
        norm = torch.sqrt(norm)
        return x * norm if self.inverse else x / norm

    @torch.no_grad()
    def invert(self, y: torch.Tensor) -> torch.Tensor:
        """Exact inverse of the forward (non-inverse) GDN: the ``x`` with ``GDN(x) == y``.

        Solves ``(I - diag(y**2) gamma) x**2 = y**2 * beta`` per time step (float64); ``y`` must
        lie in the range of the GDN (the system's solution must be non-negative)."""
        if self.inverse:
            raise ValueError("invert() inverts the forward GDN; an IGDN layer is itself the approximate inverse")
        beta = self.effective_beta().double()
        gamma = self.effective_gamma().double()
        yd = y.double().permute(0, 2, 1)  # (B, T, C)
        v = yd * yd
        eye = torch.eye(self.channels, dtype=torch.float64, device=yd.device)
        a = eye - v[..., :, None] * gamma[None, None]
        u = torch.linalg.solve(a, (v * beta)[..., None])[..., 0]
        x = torch.sign(yd) * torch.sqrt(torch.clamp(u, min=0.0))
        return x.permute(0, 2, 1).to(y.dtype)
