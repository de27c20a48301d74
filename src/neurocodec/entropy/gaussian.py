"""Mean-scale Gaussian conditional likelihood and its tabulated-scale integer tables (entropy layer).

byun2023 §3.2.2, Eq. 1: given the hyperprior's mean ``mu`` and scale ``sigma`` of a latent, the
probability of the quantized value ``z`` is the Gaussian mass of the unit interval around it
(a Gaussian convolved with a unit uniform)::

    p(z | z_h) = Phi((z - mu + 1/2) / sigma) - Phi((z - mu - 1/2) / sigma)

computed symmetrically as ``Phi((1/2 - |v|)/sigma) - Phi((-1/2 - |v|)/sigma)`` with ``v = z - mu``
for precision in the tails.  Scales are bounded below by :data:`SCALE_MIN`.

For range coding (as CompressAI's ``GaussianConditional``, written here): the encoder codes the
integer ``q = round(z - mu)`` with the table of the tabulated scale nearest to ``sigma`` (in log
scale; :data:`SCALE_TABLE`, 64 values from 0.11 to 64); the decoder adds ``mu`` back.  The tables
are a pure function of the fixed scale table, built in float64 (:func:`gaussian_tables`).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.special import ndtr

from .tables import TableSet, build_tables

__all__ = ["gaussian_likelihood", "SCALE_MIN", "SCALE_TABLE", "scale_index", "gaussian_tables", "TAIL_SIGMAS"]

#: lower bound on scales (likelihood and tables)
SCALE_MIN = 0.11
#: tabulated scales: 64 values, log-spaced between 0.11 and 64
SCALE_TABLE = np.exp(np.linspace(math.log(SCALE_MIN), math.log(64.0), 64))
#: each table covers ``|q| <= ceil(TAIL_SIGMAS * scale)``; the rest is the escape symbol
TAIL_SIGMAS = 6.5

_SQRT1_2 = 1.0 / math.sqrt(2.0)


def _std_cdf(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * torch.erfc(-x * _SQRT1_2)


def gaussian_likelihood(z: torch.Tensor, mean: torch.Tensor, scale: torch.Tensor,
                        floor: float = 1e-9) -> torch.Tensor:
    """Eq. 1 of byun2023: ``Phi((z-mu+1/2)/s) - Phi((z-mu-1/2)/s)`` with ``s >= SCALE_MIN``."""
    s = torch.clamp(scale, min=SCALE_MIN)
    v = torch.abs(z - mean)
    p = _std_cdf((0.5 - v) / s) - _std_cdf((-0.5 - v) / s)
    return torch.clamp(p, min=floor)


def scale_index(scale) -> np.ndarray:
    """Row of :data:`SCALE_TABLE` nearest (in log scale) to each scale (float64 arithmetic)."""
    s = np.maximum(np.asarray(scale, dtype=np.float64), SCALE_MIN)
    step = (math.log(SCALE_TABLE[-1]) - math.log(SCALE_TABLE[0])) / (len(SCALE_TABLE) - 1)
    idx = np.rint((np.log(s) - math.log(SCALE_TABLE[0])) / step)
    return np.clip(idx, 0, len(SCALE_TABLE) - 1).astype(np.int64)


def gaussian_tables() -> TableSet:
    """Integer tables of ``q = round(z - mu)`` for every tabulated scale."""
    pmfs, offsets, tails = [], [], []
    for s in SCALE_TABLE:
        k = max(1, int(math.ceil(TAIL_SIGMAS * s)))
        q = np.arange(-k, k + 1, dtype=np.float64)
        pmfs.append(ndtr((q + 0.5) / s) - ndtr((q - 0.5) / s))
        offsets.append(-k)
        tails.append(2.0 * ndtr(-(k + 0.5) / s))
    return build_tables(pmfs, offsets, tails)
