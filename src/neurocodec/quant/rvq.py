"""Residual vector quantization with EMA codebooks (defossez2022 §3.2, Algorithm 1).

:class:`ResidualVQ` quantizes ``(B, D, T)`` latents with up to ``n_q`` codebooks of ``bins``
entries: codebook ``i`` quantizes the residual left by codebooks ``1..i-1`` (Algorithm 1), so the
first ``k`` codebooks alone give a coarser code (multi-bandwidth: one model, ``k`` chosen per
batch in training and from the bitrate in coding).

Training of each codebook (van den Oord 2017, Dhariwal 2020, Zeghidour 2021):

* **k-means initialisation**: the first training batch runs ``kmeans_iters`` Lloyd iterations
  from entries sampled from the batch;
* **EMA updates** with decay 0.99: ``N_j <- d N_j + (1-d) n_j`` (cluster sizes),
  ``m_j <- d m_j + (1-d) sum of the vectors assigned to j``, ``e_j = m_j / N~_j`` with Laplace
  smoothing of ``N``;
* **dead codes**: entries whose EMA cluster size falls below ``threshold`` (2) are replaced by
  vectors sampled from the current batch (their statistics restart at the threshold);
* **straight-through** gradient: the quantized output is ``x + (q - x).detach()``;
* **commitment loss** ``||z_c - q_c(z_c)||^2`` (Eq. 3, mean over elements), gradient to the input only.

Under ``torch.distributed`` the EMA statistics are summed over ranks and k-means initialisations
and replacements are drawn on rank 0 and broadcast, so every rank keeps identical codebooks.

Nearest-entry search uses ``-(|x|^2 - 2 x.e + |e|^2)`` and its first maximum, the expression of
the reference implementation, so imported models give identical codes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


def _dist_ready() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def _all_reduce_(t: torch.Tensor) -> torch.Tensor:
    if _dist_ready():
        torch.distributed.all_reduce(t)
    return t


def _broadcast_(t: torch.Tensor) -> torch.Tensor:
    if _dist_ready():
        torch.distributed.broadcast(t, 0)
    return t


def sample_vectors(x: torch.Tensor, num: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """``num`` rows of ``x`` (without replacement when there are enough)."""
    n = x.shape[0]
    if n >= num:
        idx = torch.randperm(n, device=x.device, generator=generator)[:num]
    else:
        idx = torch.randint(0, n, (num,), device=x.device, generator=generator)
    return x[idx]


def kmeans(x: torch.Tensor, k: int, iters: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """Lloyd's k-means on rows of ``x``: centroids ``(k, D)`` and cluster sizes ``(k,)``.
    Empty clusters keep their previous centroid."""
    means = sample_vectors(x, k)
    bins = torch.zeros(k, device=x.device)
    for _ in range(iters):
        idx = torch.cdist(x, means).argmin(-1)
        bins = torch.bincount(idx, minlength=k).to(x.dtype)
        sums = torch.zeros_like(means).index_add_(0, idx, x)
        empty = bins == 0
        means = torch.where(empty[:, None], means, sums / bins.clamp(min=1)[:, None])
    return means, bins


class EmaCodebook(nn.Module):
    """One codebook of ``bins`` vectors of size ``dim`` trained by EMA (not by gradients)."""

    def __init__(self, dim: int, bins: int = 1024, decay: float = 0.99, eps: float = 1e-5,
                 threshold: float = 2.0, kmeans_iters: int = 50, kmeans_init: bool = True):
        super().__init__()
        self.dim, self.bins, self.decay, self.eps = dim, bins, decay, eps
        self.threshold, self.kmeans_iters = threshold, kmeans_iters
        embed = torch.zeros(bins, dim) if kmeans_init else nn.init.kaiming_uniform_(torch.empty(bins, dim))
        self.register_buffer("inited", torch.tensor([0.0 if kmeans_init else 1.0]))
        self.register_buffer("cluster_size", torch.zeros(bins))
        self.register_buffer("embed", embed)
        self.register_buffer("embed_avg", embed.clone())

    def nearest(self, x: torch.Tensor) -> torch.Tensor:
        """Index of the nearest entry of each row of ``x`` ``(N, D)``."""
        e = self.embed.t()
        key = (self.embed._version, self.embed.data_ptr())
        cache = getattr(self, "_norm_cache", None)
        if self.training or cache is None or cache[0] != key:
            cache = (key, e.pow(2).sum(0, keepdim=True))
            if not self.training:
                self._norm_cache = cache
        score = -(x.pow(2).sum(1, keepdim=True) - 2 * x @ e + cache[1])
        return score.max(dim=-1).indices

    def lookup(self, idx: torch.Tensor) -> torch.Tensor:
        return F.embedding(idx, self.embed)

    @torch.no_grad()
    def init_kmeans(self, x: torch.Tensor) -> None:
        if bool(self.inited.item()):
            return
        means, bins = kmeans(x, self.bins, self.kmeans_iters)
        self.embed.copy_(_broadcast_(means))
        self.embed_avg.copy_(self.embed)
        self.cluster_size.copy_(_broadcast_(bins))
        self.inited.fill_(1.0)

    @torch.no_grad()
    def replace_dead(self, x: torch.Tensor) -> int:
        """Replace entries whose EMA usage is below the threshold by batch vectors; returns how many."""
        dead = self.cluster_size < self.threshold
        n = int(dead.sum().item())
        if n == 0 or self.threshold <= 0:
            return 0
        cand = _broadcast_(sample_vectors(x, self.bins))
        self.embed.copy_(torch.where(dead[:, None], cand, self.embed))
        self.cluster_size.masked_fill_(dead, self.threshold)
        self.embed_avg.copy_(torch.where(dead[:, None], self.embed * self.threshold, self.embed_avg))
        return n

    @torch.no_grad()
    def ema_update(self, x: torch.Tensor, idx: torch.Tensor) -> None:
        onehot = F.one_hot(idx, self.bins).to(x.dtype)
        counts = _all_reduce_(onehot.sum(0))
        sums = _all_reduce_(onehot.t() @ x)
        self.cluster_size.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.embed_avg.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        total = self.cluster_size.sum()
        smoothed = (self.cluster_size + self.eps) / (total + self.bins * self.eps) * total
        self.embed.copy_(self.embed_avg / smoothed[:, None])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Quantize rows of ``x`` ``(N, D)``; in training also update the codebook."""
        if self.training:
            self.init_kmeans(x.detach())
        idx = self.nearest(x.detach() if self.training else x)
        q = self.lookup(idx)
        if self.training:
            self.replace_dead(x.detach())
            self.ema_update(x.detach(), idx)
        return q, idx


@dataclass
class RvqOutput:
    """Quantized latent ``(B, D, T)`` (straight-through in training), codes ``(n_q, B, T)`` and
    the commitment loss (sum over codebooks of the mean squared error, Eq. 3)."""

    quantized: torch.Tensor
    codes: torch.Tensor
    commitment: torch.Tensor


class ResidualVQ(nn.Module):
    """Algorithm 1: ``n_q`` EMA codebooks applied to successive residuals."""

    def __init__(self, dim: int = 128, n_q: int = 32, bins: int = 1024, decay: float = 0.99,
                 threshold: float = 2.0, kmeans_iters: int = 50, kmeans_init: bool = True):
        super().__init__()
        self.dim, self.n_q, self.bins = dim, n_q, bins
        self.codebooks = nn.ModuleList([EmaCodebook(dim, bins, decay, 1e-5, threshold, kmeans_iters, kmeans_init)
                                        for _ in range(n_q)])

    @property
    def bits_per_codebook(self) -> int:
        return int(math.log2(self.bins))

    def forward(self, z: torch.Tensor, n_q: int | None = None) -> RvqOutput:
        n_q = n_q or self.n_q
        b, d, t = z.shape
        residual = z.transpose(1, 2).reshape(-1, d)
        out = torch.zeros_like(residual)
        codes, commit = [], z.new_zeros(())
        for cb in self.codebooks[:n_q]:
            q, idx = cb(residual)
            if self.training:
                commit = commit + F.mse_loss(residual, q.detach())
                q_st = residual + (q - residual).detach()
            else:
                q_st = q
            residual = residual - q_st  # straight-through: later residuals carry no gradient
            out = out + q_st
            codes.append(idx.view(b, t))
        quant = out.view(b, t, d).transpose(1, 2)
        return RvqOutput(quant, torch.stack(codes), commit)

    @torch.no_grad()
    def encode(self, z: torch.Tensor, n_q: int | None = None) -> torch.Tensor:
        """Codes ``(n_q, B, T)`` of latents ``(B, D, T)`` (no codebook update)."""
        n_q = n_q or self.n_q
        b, d, t = z.shape
        residual = z.transpose(1, 2).reshape(-1, d)
        codes = []
        for cb in self.codebooks[:n_q]:
            idx = cb.nearest(residual)
            residual = residual - cb.lookup(idx)
            codes.append(idx.view(b, t))
        return torch.stack(codes)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Latents ``(B, D, T)`` from codes ``(k, B, T)`` (the sum of the first ``k`` codebooks)."""
        out = torch.tensor(0.0, device=codes.device)
        for cb, idx in zip(self.codebooks, codes):
            out = out + cb.lookup(idx).transpose(1, 2)
        return out
