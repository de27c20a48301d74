"""Figures of an evaluation report: rate-quality curves and spectrogram comparisons (matplotlib)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from .report import ConditionSummary


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def matplotlib_ticker():
    import matplotlib.ticker

    return matplotlib.ticker


def rate_quality_plot(summaries: Sequence[ConditionSummary], metric: str, path: Path, label: str | None = None) -> Path:
    """One line per codec: metric mean (95% CI bars) against the measured bitrate."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
    codecs = sorted({s.codec for s in summaries})
    for cid in codecs:
        pts = sorted((s for s in summaries if s.codec == cid), key=lambda s: s.measured_kbps.mean)
        x = [s.measured_kbps.mean for s in pts]
        y = [s.metrics[metric].mean for s in pts]
        e = [0 if not np.isfinite(s.metrics[metric].ci95) else s.metrics[metric].ci95 for s in pts]
        ax.errorbar(x, y, yerr=e, marker="o", capsize=3, label=cid)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(matplotlib_ticker().ScalarFormatter())
    ax.set_xlabel("measured bitrate (kbps, log scale)")
    ax.set_ylabel(label or metric)
    ax.set_title(f"{label or metric} vs bitrate")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def spectrogram_comparison(reference: np.ndarray, decoded: dict[str, np.ndarray], sr: int, path: Path,
                           title: str = "") -> Path:
    """Log-magnitude spectrograms of the reference and each decoded signal, stacked."""
    plt = _plt()
    from scipy.signal import stft

    panels = [("reference", reference), *decoded.items()]
    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 1.8 * len(panels)), dpi=100, sharex=True, squeeze=False)
    n_fft = 512 if sr <= 16000 else 1024
    for ax, (name, x) in zip(axes[:, 0], panels):
        f, t, z = stft(x, fs=sr, nperseg=n_fft, noverlap=n_fft * 3 // 4)
        db = 20 * np.log10(np.abs(z) + 1e-7)
        ax.pcolormesh(t, f / 1000, db, vmin=db.max() - 90, vmax=db.max(), shading="auto", cmap="magma")
        ax.set_ylabel("kHz")
        ax.set_title(name, fontsize=9, loc="left")
    axes[-1, 0].set_xlabel("time (s)")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
