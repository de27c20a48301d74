"""More RVQ codebooks for a trained EnCodec, everything else frozen (defossez2022 §3.2, Algorithm 1).

A model trained with ``n`` codebooks gets codebooks ``n+1..N`` (higher bandwidths) without touching
its network, its first codebooks, their static tables or its code LM, so the streams of its old
bandwidths stay exactly what they were (see ``EncodecConfig.nested_n_q``).  Each new codebook is
trained on the residual the previous ones leave on the frozen encoder's latents, greedily one after
the other (Algorithm 1 applied stage by stage, with the RVQ's own training rules):

1. k-means initialisation (:meth:`EmaCodebook.init_kmeans`: Lloyd iterations from latents sampled
   from the data);
2. ``epochs`` passes of EMA updates (decay 0.99) over shuffled batches of ``batch`` latents,
   replacing dead codes (EMA usage below 2) from the batch, except in the last pass (so that no
   entry is left as an unrefined sample);
3. the next codebook's residual is what this one leaves.

The static tables of the new codebooks are their code histograms on the same latents (+1
smoothing, as :meth:`EncodecCodec.fit_entropy_coder`).  The LM is not retrained: codebooks beyond
those it models are coded with the static tables (:class:`~neurocodec.codecs.encodec_stream._Coder`).
``scripts/extend_encodec_codebooks.py`` runs this on a corpus and writes the weights.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Iterable

import numpy as np
import torch

from ..codecs.encodec import STATIC_PRECISION, EncodecCodec, EncodecConfig
from ..entropy.range_coder import quantize_pmf
from ..quant.rvq import EmaCodebook

__all__ = ["CodebookStats", "Extension", "encoder_latents", "train_codebook", "extend_codebooks"]


@dataclass
class CodebookStats:
    """One added codebook (0-based ``codebook``): mean square of the residual before and after it,
    entries used on the training latents, dead codes replaced, entropy of its codes (bits)."""

    codebook: int
    residual_mse_before: float
    residual_mse_after: float
    codes_used: int
    dead_codes_replaced: int
    entropy_bits: float
    seconds: float


@dataclass
class Extension:
    """The extended model's tensors (``state``, the stored dtypes) and config, and what was done."""

    state: dict[str, torch.Tensor]
    config: EncodecConfig
    frames: int
    latent_mse: float
    codebooks: list[CodebookStats] = field(default_factory=list)


@torch.no_grad()
def encoder_latents(codec: EncodecCodec, signals: Iterable[np.ndarray]) -> tuple[torch.Tensor, float]:
    """Latents ``(N, D)`` of mono ``(1, T)`` signals at the codec's rate (whole files through the
    frozen encoder) and the seconds of audio."""
    rows, seconds = [], 0.0
    codec.eval()
    for x in signals:
        x = np.asarray(x, dtype=np.float32)
        seconds += x.shape[-1] / codec.sample_rate
        z = codec.net.encoder(torch.from_numpy(x.reshape(1, 1, -1)))  # (1, D, T)
        rows.append(z[0].t().contiguous())
    return torch.cat(rows), seconds


@torch.no_grad()
def train_codebook(cb: EmaCodebook, residual: torch.Tensor, epochs: int, batch: int, kmeans_rows: int,
                   gen: torch.Generator) -> int:
    """k-means initialisation, then ``epochs`` passes of EMA updates of ``cb`` on ``residual``
    ``(N, D)``; returns the number of dead codes replaced."""
    n = residual.shape[0]
    batch = min(batch, n)
    cb.train()
    cb.init_kmeans(residual[torch.randperm(n, generator=gen)[:kmeans_rows]])
    replaced, threshold = 0, cb.threshold
    try:
        for e in range(epochs):
            if e == epochs - 1:
                cb.threshold = 0.0  # last pass: EMA updates only
            order = torch.randperm(n, generator=gen)
            for a in range(0, n - batch + 1, batch):
                x = residual[order[a:a + batch]]
                idx = cb.nearest(x)
                replaced += cb.replace_dead(x)
                cb.ema_update(x, idx)
    finally:
        cb.threshold = threshold
        cb.eval()
    return replaced


@torch.no_grad()
def extend_codebooks(codec: EncodecCodec, state: dict[str, torch.Tensor], latents: torch.Tensor, n_q: int,
                     bandwidths: Iterable[float], *, epochs: int = 4, batch: int = 8192,
                     kmeans_rows: int = 32768, seed: int = 0, progress=None) -> Extension:
    """Add codebooks ``codec.config.n_q + 1 .. n_q`` to ``codec`` (loaded from ``state``, the
    tensors of its weights file, which are returned unchanged plus the new ones) trained on
    ``latents`` ``(N, D)``; ``bandwidths`` join the ladder."""
    old = codec.config
    base = old.n_q
    if n_q <= base:
        raise ValueError(f"the model already has {base} codebooks")
    top = codec.net.cfg.n_q_for(max(bandwidths))
    if top > n_q:
        raise ValueError(f"{max(bandwidths):g} kbps needs {top} codebooks, more than {n_q}")
    state = dict(state)
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # k-means samples its start from the global generator
    residual = latents.clone()
    for cb in codec.net.quantizer.codebooks:
        residual -= cb.lookup(cb.nearest(residual))
    embed_dtype = state["net.quantizer.codebooks.0.embed"].dtype
    stats, counts = [], []
    for k in range(base, n_q):
        t0 = time.time()
        cb = EmaCodebook(latents.shape[1], old.bins)
        before = float(residual.pow(2).mean())
        replaced = train_codebook(cb, residual, epochs, batch, kmeans_rows, gen)
        emb = cb.embed.to(embed_dtype)  # what ships: the residual of the next codebook uses it
        cb.embed.copy_(emb.float())
        idx = cb.nearest(residual)
        residual -= cb.lookup(idx)
        counts.append(np.bincount(idx.numpy(), minlength=old.bins) + 1.0)
        p = counts[-1] / counts[-1].sum()
        state[f"net.quantizer.codebooks.{k}.embed"] = emb.contiguous().clone()
        stats.append(CodebookStats(k, before, float(residual.pow(2).mean()), int((counts[-1] > 1).sum()),
                                   replaced, float(-(p * np.log2(p)).sum()), round(time.time() - t0, 1)))
        if progress:
            progress(stats[-1])
    pmf = np.stack(counts)
    pmf /= pmf.sum(1, keepdims=True)
    new_cdf = torch.from_numpy(quantize_pmf(pmf, STATIC_PRECISION)).to(state["static_cdf"].dtype)
    state["static_cdf"] = torch.cat([state["static_cdf"], new_cdf]).contiguous()
    bws = tuple(sorted(set(float(b) for b in old.bandwidths) | {float(b) for b in bandwidths}))
    cfg = replace(old, n_q=n_q, bandwidths=bws, nested_n_q=old.nested_n_q or base)
    return Extension(state, cfg, int(latents.shape[0]), float(latents.pow(2).mean()), stats)
