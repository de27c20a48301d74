"""Discretized mixture of logistics over 16-bit PCM (fejgin2020 §3.2, after Parallel WaveNet [14]
and PixelCNN++).

The output alphabet is the 65536 values of 16-bit PCM, ``x = v / 32768`` for integer
``v in [-32768, 32767]``.  Value ``v`` owns the interval ``[x - d, x + d]`` with
``d = 1 / 65536`` (half a step), except that the lowest value also owns everything below and the
highest everything above (the tails of the logistics are folded onto the edges).  With mixture
weights ``pi_k = softmax(logits)_k``, means ``mu_k`` and scales ``s_k = exp(log_s_k)``::

    P(v) = sum_k pi_k [sigma((x + d - mu_k) / s_k) - sigma((x - d - mu_k) / s_k)]

(``sigma(+inf) = 1`` at the top edge, ``sigma(-inf) = 0`` at the bottom edge).  The difference of
two sigmoids is evaluated as ``log sigma(a) + log sigma(-b) + log(1 - exp(b - a))``, which stays
accurate when the bin is far narrower than the logistic (small probabilities, no catastrophic
cancellation).

Sampling: pick component ``k`` with probability ``pi_k``, draw ``y = mu_k + s_k log(u / (1 - u))``
(a logistic variable), then ``v = clip(round(32768 y), -32768, 32767)``.  Rounding to the
nearest grid value and clipping is exactly the binning above, so the sampler draws from ``P``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["PCM_SCALE", "HALF_BIN", "split_params", "log_prob", "log_prob_int", "sample",
           "sample_from_uniforms", "num_params"]

PCM_SCALE = 32768.0
HALF_BIN = 1.0 / 65536.0
_MIN_LOG_SCALE = -14.0  # s >= 8e-7, a twentieth of a PCM step
_MAX_LOG_SCALE = 2.0


def num_params(num_logistics: int) -> int:
    """Network outputs per sample: logits, means and log-scales of every component."""
    return 3 * int(num_logistics)


def split_params(params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(..., 3L)`` network output -> ``(logits, mu, log_s)``, each ``(..., L)``; ``log_s`` is
    clamped to ``[-14, 2]``."""
    logits, mu, log_s = params.chunk(3, dim=-1)
    return logits, mu, log_s.clamp(_MIN_LOG_SCALE, _MAX_LOG_SCALE)


def _log_sigmoid_diff(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``log(sigma(a) - sigma(b))`` for ``a > b``, stable for tiny differences."""
    return F.logsigmoid(a) + F.logsigmoid(-b) + torch.log(-torch.expm1(b - a))


def log_prob(x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """Log-probability (natural log) of 16-bit values ``x`` (floats on the grid ``v/32768``)
    under the mixture ``params`` (``(..., 3L)``, see :func:`split_params`); shape of ``x``."""
    logits, mu, log_s = split_params(params)
    x = x.unsqueeze(-1)
    inv_s = torch.exp(-log_s)
    centered = x - mu
    plus = inv_s * (centered + HALF_BIN)
    minus = inv_s * (centered - HALF_BIN)
    mid = _log_sigmoid_diff(plus, minus)
    lowest = F.logsigmoid(plus)        # log sigma(plus): everything below the top of the bin
    highest = F.logsigmoid(-minus)     # log (1 - sigma(minus))
    lo_edge = -1.0 + 0.5 / PCM_SCALE
    hi_edge = (PCM_SCALE - 1.5) / PCM_SCALE
    lp = torch.where(x < lo_edge, lowest, torch.where(x > hi_edge, highest, mid))
    return torch.logsumexp(lp + F.log_softmax(logits, dim=-1), dim=-1)


def log_prob_int(v: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """:func:`log_prob` of integer PCM values ``v`` in ``[-32768, 32767]``."""
    return log_prob(v.to(params.dtype) / PCM_SCALE, params)


def sample_from_uniforms(params: np.ndarray, u_comp: np.ndarray, u_val: np.ndarray) -> np.ndarray:
    """Integer PCM values drawn from ``params`` (``(..., 3L)`` numpy) with the given uniforms
    in (0, 1) (shape ``params.shape[:-1]`` each): the component by inverse CDF of ``pi``, the
    value by the logistic inverse CDF, rounded and clipped (module docstring)."""
    params = np.asarray(params, dtype=np.float64)
    L = params.shape[-1] // 3
    logits, mu, log_s = params[..., :L], params[..., L:2 * L], np.clip(params[..., 2 * L:], _MIN_LOG_SCALE,
                                                                     _MAX_LOG_SCALE)
    w = np.exp(logits - logits.max(axis=-1, keepdims=True))
    cdf = np.cumsum(w, axis=-1)
    k = np.minimum((cdf < (u_comp[..., None] * cdf[..., -1:])).sum(axis=-1), L - 1)
    m = np.take_along_axis(mu, k[..., None], -1)[..., 0]
    s = np.exp(np.take_along_axis(log_s, k[..., None], -1)[..., 0])
    u = np.clip(u_val, 1e-12, 1 - 1e-12)
    y = m + s * (np.log(u) - np.log1p(-u))
    return np.clip(np.floor(y * PCM_SCALE + 0.5), -PCM_SCALE, PCM_SCALE - 1).astype(np.int64)


def sample(params: torch.Tensor | np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Integer PCM values drawn from ``params`` with uniforms from ``rng``."""
    p = params.detach().cpu().numpy() if isinstance(params, torch.Tensor) else np.asarray(params)
    shape = p.shape[:-1]
    return sample_from_uniforms(p, rng.random(shape), rng.random(shape))


def logistic_cdf(z: float) -> float:
    """``sigma(z)`` in double precision (used by tests and the generation kernel's reference)."""
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)
