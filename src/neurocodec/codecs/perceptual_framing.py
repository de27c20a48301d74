"""Framing of the byun2023 perceptual coder (§3.1): frames of ``T`` samples overlapping by
``overlap`` samples, a half-sine ramp at analysis and at synthesis so that the two products add to
one over the overlap, and the overlap-add that inverts it."""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

__all__ = ["num_frames", "frame_signal", "overlap_add"]


def _ramp(overlap: int, device=None) -> torch.Tensor:
    n = torch.arange(overlap, dtype=torch.float64, device=device)
    return torch.sin(math.pi * (n + 0.5) / (2 * overlap))


def _window(frame: int, overlap: int, device=None) -> torch.Tensor:
    """The analysis/synthesis window (float64, on ``device``)."""
    w = torch.ones(frame, dtype=torch.float64, device=device)
    r = _ramp(overlap, device)
    w[:overlap] = r
    w[-overlap:] = r.flip(0)
    return w


def num_frames(num_samples: int, frame: int, overlap: int) -> int:
    """Frames covering ``num_samples`` samples after ``overlap`` leading zeros (at least one)."""
    hop = frame - overlap
    return max(1, math.ceil((num_samples + overlap) / hop))


def frame_signal(x: torch.Tensor, frame: int, overlap: int) -> torch.Tensor:
    """``(B, N)`` -> windowed frames ``(B, L, frame)``: ``overlap`` zeros are put in front (so that
    the first samples are not faded in) and zeros at the end."""
    hop = frame - overlap
    n = num_frames(x.shape[-1], frame, overlap)
    total = n * hop + overlap
    x = F.pad(x, (overlap, total - overlap - x.shape[-1]))
    return x.unfold(-1, frame, hop) * _window(frame, overlap, x.device).to(x.dtype)


def overlap_add(frames: torch.Tensor, num_samples: int, overlap: int) -> torch.Tensor:
    """Windowed overlap-add of ``(B, L, frame)`` frames, without the leading ``overlap`` samples,
    cut to ``num_samples`` (inverse of :func:`frame_signal` for unchanged frames)."""
    b, n, frame = frames.shape
    hop = frame - overlap
    y = frames * _window(frame, overlap, frames.device).to(frames.dtype)
    out = F.fold(y.transpose(1, 2), output_size=(1, n * hop + overlap), kernel_size=(1, frame), stride=(1, hop))
    return out.reshape(b, -1)[:, overlap:overlap + num_samples]
