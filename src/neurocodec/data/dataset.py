"""Random fixed-length training crops from a manifest, as a torch ``Dataset``.

``SegmentDataset(manifest, split, segment_samples, sample_rate, seed)[i]`` is a float32
tensor ``(1, segment_samples)``: a file of the split chosen with probability proportional
to its duration, a uniformly random excerpt of it (zero-padded at the end when the file is
shorter), mixed down to mono and resampled to ``sample_rate`` with soxr.  Crop ``i`` of
epoch ``e`` depends only on ``(seed, e, i)``, so runs are reproducible with any number of
DataLoader workers; call :meth:`SegmentDataset.set_epoch` to draw new crops each epoch.
Only the needed frames are read from disk (FLAC and WAV seek).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np
import soundfile as sf
import torch

from ..audio import fit_length, resample
from ..errors import AudioError, UserError
from .manifest import Manifest, SegmentRecord

#: extra input samples read on each side of a crop so the resampler has context
RESAMPLE_MARGIN = 64


@dataclass(frozen=True)
class Crop:
    """One training example and where it came from."""

    audio: np.ndarray  # float32 (1, segment_samples)
    record: SegmentRecord
    start_s: float  # crop start in the file, seconds


class SegmentDataset(torch.utils.data.Dataset):
    """Fixed-length mono crops of the files of one split of a manifest."""

    def __init__(self, manifest: Manifest | str | os.PathLike, split: str = "train", segment_samples: int = 24000,
                 sample_rate: int = 24000, seed: int = 0, length: int | None = None,
                 sources: str | list[str] | None = None):
        if not isinstance(manifest, Manifest):
            manifest = Manifest.load(manifest)
        if int(segment_samples) <= 0:
            raise UserError(f"segment_samples must be positive, not {segment_samples}")
        if int(sample_rate) <= 0:
            raise UserError(f"sample_rate must be positive, not {sample_rate}")
        sub = manifest.filter(split=split, source=sources)
        self.records = [r for r in sub.records if r.duration > 0]
        if not self.records:
            raise UserError(f"the manifest has no audio in split '{split}'"
                            + (f" from source(s) {sources}" if sources else ""))
        self.manifest = sub
        self.segment_samples = int(segment_samples)
        self.sample_rate = int(sample_rate)
        self.seed = int(seed)
        self.epoch = 0
        durations = np.array([r.duration for r in self.records], dtype=np.float64)
        self._cum = np.cumsum(durations / durations.sum())
        self._cum[-1] = 1.0
        total = float(durations.sum())
        self.length = int(length) if length is not None else max(
            1, math.ceil(total * self.sample_rate / self.segment_samples))

    def __len__(self) -> int:
        return self.length

    def set_epoch(self, epoch: int) -> None:
        """Draw a different set of crops (crop i of epoch e is fixed by seed, e, i)."""
        self.epoch = int(epoch)

    def crop(self, index: int) -> Crop:
        """The crop at ``index`` with its record and start time."""
        if not 0 <= index < self.length:
            raise IndexError(f"crop index {index} out of range 0..{self.length - 1}")
        rng = np.random.default_rng([self.seed, self.epoch, int(index)])
        rec = self.records[int(np.searchsorted(self._cum, rng.random(), side="right").clip(0, len(self.records) - 1))]
        path = self.manifest.abspath(rec)
        try:
            info = sf.info(str(path))
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise AudioError(f"cannot read {path}: {exc}") from None
        sr_in = int(info.samplerate)
        need = int(math.ceil(self.segment_samples * sr_in / self.sample_rate))
        total = int(info.frames)
        start = int(rng.integers(0, total - need + 1)) if total > need else 0
        lo = max(0, start - RESAMPLE_MARGIN)
        hi = min(total, start + need + RESAMPLE_MARGIN)
        data, _ = sf.read(str(path), frames=hi - lo, start=lo, dtype="float32", always_2d=True)
        x = data.mean(axis=1)[None, :].astype(np.float32)
        if sr_in != self.sample_rate:
            x = resample(x, sr_in, self.sample_rate)
            offset = int(round((start - lo) * self.sample_rate / sr_in))
        else:
            offset = start - lo
        x = fit_length(x[:, offset:], self.segment_samples)
        return Crop(np.ascontiguousarray(x, dtype=np.float32), rec, start / sr_in)

    def __getitem__(self, index: int) -> torch.Tensor:
        return torch.from_numpy(self.crop(int(index)).audio)
