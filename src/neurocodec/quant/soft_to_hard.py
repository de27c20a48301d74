"""Soft-to-hard ("softmax") scalar quantization with learned centroids.

Agustsson et al. 2017 (ref. [25] of zhen2019, [22] of zhen2020), as used by CMRL
(zhen2019 §2.1.2) and CQ (zhen2020 §2.2, §3.3):

* distance matrix ``D(i, j) = (h_i - b_j)^2`` between the I code values ``h`` and the J
  centroids ``b`` (squared Euclidean distance, the scalar case of Agustsson's ``||.||^2``);
* soft assignment ``A_soft = softmax(-alpha D)`` row-wise (zhen2020 §2.2 step (b)); its
  limit for ``alpha -> inf`` is the hard assignment ``A_hard`` (one-hot of the nearest
  centroid, eq. 1);
* soft output ``A_soft b`` (what zhen2020 §2.2 feeds the decoder during training), hard
  output ``A_hard b`` (test time, step (c)) and the straight-through output
  ``soft + stopgrad(hard - soft)`` (hard values forward, soft gradients backward, as in
  Mentzer/Agustsson's implementations);
* quantization penalty ``Q(A_soft) = mean_i sum_j sqrt(A_soft(i, j)) - 1`` (zhen2020 §3.3
  defines ``sum_{i,j} (sqrt(A_soft(i,j)) - 1) / I``, which differs by the constant ``J - 1``;
  ours is 0 exactly for one-hot rows and has the same gradient);
* entropy estimate ``E(A_soft) = -sum_j p_j log2 p_j`` with ``p_j = sum_i A_soft(i, j) / I``,
  the soft histogram of the assignments (zhen2020 §3.3; the paper's ``/(IJ)`` would not
  sum to one, we normalise by ``I``).  ``E`` is in bits per symbol.

``alpha`` is an argument of :meth:`SoftToHardQuantizer.forward` so the trainer can anneal
it (:func:`anneal_alpha`); zhen2020 uses ``alpha = 300``.  Distances can be measured in units
of ``scale`` (``D = ((h - b) / scale)^2``): the codecs set ``scale`` to the initial centroid
spacing so that one ``alpha`` means the same hardness for the 32 code centroids on [-1, 1]
and the 256 LSP centroids on (0, pi) (the papers do not say in which units ``D`` is taken;
with ``scale`` = spacing, ``alpha = 300`` is nearly hard, as zhen2020 §2.2 describes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

__all__ = ["QuantizerOutput", "SoftToHardQuantizer", "anneal_alpha", "soft_histogram_entropy", "kmeans_1d",
           "uniform_for_entropy"]

_OUTPUT_MODES = ("soft", "ste", "hard")


@dataclass
class QuantizerOutput:
    """Everything one soft-to-hard quantization step produces.

    ``output`` is what the decoder consumes: ``soft`` (or ``ste`` when so configured) in
    training mode, ``hard`` in eval mode.  ``probs`` is ``A_soft`` with shape
    ``x.shape + (J,)``; ``penalty`` and ``entropy_bits`` are scalars over all symbols of the
    call; ``bits`` is ``entropy_bits * num_symbols`` (the rate estimate).
    """

    output: torch.Tensor
    soft: torch.Tensor
    hard: torch.Tensor
    ste: torch.Tensor
    indices: torch.Tensor
    probs: torch.Tensor
    penalty: torch.Tensor
    entropy_bits: torch.Tensor

    @property
    def num_symbols(self) -> int:
        return int(self.indices.numel())

    @property
    def bits(self) -> torch.Tensor:
        return self.entropy_bits * self.num_symbols


def soft_histogram_entropy(probs: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """Entropy in bits of the average soft assignment ``mean_i probs[i, :]`` (probs (..., J))."""
    p = probs.reshape(-1, probs.shape[-1]).mean(0)
    return -(p * torch.log2(p + eps)).sum()


def anneal_alpha(progress: float, start: float = 5.0, end: float = 300.0) -> float:
    """Geometric interpolation of ``alpha`` from ``start`` (progress 0) to ``end`` (progress 1)."""
    t = min(max(float(progress), 0.0), 1.0)
    return float(start * (end / start) ** t)


def kmeans_1d(values: torch.Tensor, k: int, iterations: int = 30) -> torch.Tensor:
    """Sorted ``k`` centroids of scalar ``values`` by Lloyd's k-means, started on the values'
    quantiles (deterministic).  An empty cluster keeps its previous centroid.  Kankanahalli
    2018 initialises its quantization bins this way when quantization switches on."""
    x = values.detach().reshape(-1).double()
    if x.numel() < k:
        raise ValueError(f"k-means needs at least {k} values, got {x.numel()}")
    xs = torch.sort(x).values
    c = xs[((torch.arange(k, dtype=torch.float64) + 0.5) * xs.numel() / k).long()]
    for _ in range(iterations):
        # 1-D: the nearest centroid's cells are bounded by the midpoints of sorted centroids
        c = torch.sort(c).values
        edges = torch.searchsorted(xs, 0.5 * (c[1:] + c[:-1]))
        bounds = torch.cat([torch.zeros(1, dtype=torch.long), edges, torch.tensor([xs.numel()])])
        csum = torch.cat([torch.zeros(1, dtype=torch.float64), torch.cumsum(xs, 0)])
        n = (bounds[1:] - bounds[:-1]).double()
        s = csum[bounds[1:]] - csum[bounds[:-1]]
        new = torch.where(n > 0, s / n.clamp_min(1), c)
        if torch.allclose(new, c, rtol=0, atol=1e-12):
            break
        c = new
    return torch.sort(c).values


def _grid_entropy(x: torch.Tensor, centre: float, step: float, k: int) -> float:
    idx = torch.clamp(torch.round((x - centre) / step), -(k // 2), k - 1 - k // 2)
    p = torch.unique(idx, return_counts=True)[1].double() / x.numel()
    return float(-(p * torch.log2(p)).sum())


def uniform_for_entropy(values: torch.Tensor, k: int, bits: float, iterations: int = 40) -> torch.Tensor:
    """``k`` evenly spaced centroids around the median of ``values`` (one on it) whose
    nearest-centroid assignment of ``values`` has an entropy of ``bits`` per symbol: the
    entropy-coded uniform scalar quantizer, near-optimal at a given entropy (Gish and Pierce
    1968), with its step found by bisection (on log step).  When even the finest step of the
    search cannot reach ``bits`` (few distinct values), the finest is used."""
    x = values.detach().reshape(-1).double()
    if x.numel() < 2:
        raise ValueError("need at least 2 values")
    centre = float(x.median())
    spread = float((x - centre).abs().max()) or 1.0
    lo, hi = math.log(spread / (8 * k)), math.log(4 * spread)  # fine .. coarse (entropy falls with the step)
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        if _grid_entropy(x, centre, math.exp(mid), k) > bits:
            lo = mid
        else:
            hi = mid
    step = math.exp(0.5 * (lo + hi))
    return centre + step * (torch.arange(k, dtype=torch.float64) - k // 2)


class SoftToHardQuantizer(nn.Module):
    """Scalar softmax quantizer with ``num_centroids`` learned centroids (1-D parameter).

    ``centroids`` may be given (e.g. mel-spaced LSP levels); otherwise they start evenly
    spaced on ``init_range``.  ``scale`` is the unit of the distances (see the module doc).  ``trainable=False`` freezes them (a fixed quantizer that
    still gives soft assignments, penalty and entropy).  ``train_output`` selects what the
    decoder receives in training mode: ``"soft"`` (zhen2020 §2.2, the default), ``"ste"``
    (straight-through) or ``"hard"``.
    """

    def __init__(self, num_centroids: int = 32, init_range: tuple[float, float] = (-1.0, 1.0),
                 centroids: np.ndarray | torch.Tensor | None = None, trainable: bool = True,
                 train_output: str = "soft", scale: float = 1.0) -> None:
        super().__init__()
        if num_centroids < 2:
            raise ValueError("a softmax quantizer needs at least 2 centroids")
        if train_output not in _OUTPUT_MODES:
            raise ValueError(f"train_output must be one of {_OUTPUT_MODES}, not {train_output!r}")
        if centroids is None:
            init = torch.linspace(float(init_range[0]), float(init_range[1]), num_centroids)
        else:
            init = torch.as_tensor(np.asarray(centroids), dtype=torch.float32).reshape(-1)
            if init.numel() != num_centroids:
                raise ValueError(f"{init.numel()} initial centroids given for num_centroids={num_centroids}")
        if not scale > 0:
            raise ValueError("scale must be positive")
        self.num_centroids = int(num_centroids)
        self.train_output = train_output
        self.scale = float(scale)
        self.relative_scale = False  # distances in units of the current mean centroid spacing
        self.centroids = nn.Parameter(init.clone(), requires_grad=trainable)

    @property
    def bits_per_symbol(self) -> float:
        """Fixed-length cost ``log2 J`` of one symbol."""
        return math.log2(self.num_centroids)

    def distances(self, x: torch.Tensor) -> torch.Tensor:
        """``D = ((x - b) / scale)^2`` with shape ``x.shape + (J,)``."""
        b = self.centroids.to(x.dtype)
        return ((x.unsqueeze(-1) - b) / self.unit()) ** 2

    def unit(self) -> float:
        """The unit of the distances: ``scale``, or with ``relative_scale`` the current mean
        spacing of the centroids (so that one ``alpha`` keeps its hardness after the
        centroids move, e.g. after :meth:`init_from_data`); it does not change hard decisions."""
        if not self.relative_scale:
            return self.scale
        c = self.centroids.detach()
        return max(float(c.max() - c.min()) / (self.num_centroids - 1), 1e-12)

    @torch.no_grad()
    def quantize_indices(self, x: torch.Tensor) -> torch.Tensor:
        """Index of the nearest centroid of every element (ties go to the lower index)."""
        return torch.argmin(self.distances(x), dim=-1)

    @torch.no_grad()
    def init_from_data(self, x: torch.Tensor, bits: float | None = None) -> None:
        """Set the centroids from the values ``x`` (quantizer inputs): :func:`kmeans_1d`, or
        with ``bits`` the uniform grid of :func:`uniform_for_entropy` at that entropy."""
        c = kmeans_1d(x, self.num_centroids) if bits is None else uniform_for_entropy(x, self.num_centroids, bits)
        self.centroids.copy_(c.to(self.centroids.dtype))

    def dequantize(self, indices: torch.Tensor) -> torch.Tensor:
        """Centroid values of ``indices`` (``A_hard b``)."""
        return self.centroids[indices]

    def forward(self, x: torch.Tensor, alpha: float, hard: bool | None = None) -> QuantizerOutput:
        """Quantize ``x`` (any shape).  ``hard=None`` means hard in eval mode, else the
        configured ``train_output``; ``hard=True/False`` forces hard/soft output."""
        d = self.distances(x)
        logits = -float(alpha) * d
        log_probs = torch.log_softmax(logits, dim=-1)
        probs = log_probs.exp()
        b = self.centroids.to(x.dtype)
        soft = (probs * b).sum(-1)
        indices = torch.argmin(d.detach(), dim=-1)
        hard_vals = b[indices]
        ste = soft + (hard_vals - soft).detach()
        # sqrt(p) as exp(log p / 2) keeps the gradient finite when p underflows to 0
        penalty = (0.5 * log_probs).exp().sum(-1).mean() - 1.0
        entropy = soft_histogram_entropy(probs)
        if hard is None:
            mode = self.train_output if self.training else "hard"
        else:
            mode = "hard" if hard else "soft"
        output = {"soft": soft, "ste": ste, "hard": hard_vals}[mode]
        return QuantizerOutput(output=output, soft=soft, hard=hard_vals, ste=ste, indices=indices,
                               probs=probs, penalty=penalty, entropy_bits=entropy)

    def extra_repr(self) -> str:
        return f"num_centroids={self.num_centroids}, train_output={self.train_output!r}, scale={self.scale:g}"
