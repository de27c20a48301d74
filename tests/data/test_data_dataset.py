"""SegmentDataset: fixed-length, resampled, reproducible crops."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from neurocodec.data.dataset import SegmentDataset
from neurocodec.data.manifest import Manifest, SegmentRecord
from neurocodec.errors import UserError


def _tone(path, freq, seconds, sr, channels=1):
    t = np.arange(int(seconds * sr)) / sr
    x = 0.5 * np.sin(2 * np.pi * freq * t)
    sf.write(str(path), np.stack([x] * channels, axis=1) if channels > 1 else x, sr)


@pytest.fixture
def manifest(tmp_path):
    _tone(tmp_path / "a.flac", 440.0, 3.0, 48000, channels=2)
    _tone(tmp_path / "b.flac", 1000.0, 2.0, 16000)
    _tone(tmp_path / "short.flac", 300.0, 0.1, 24000)
    _tone(tmp_path / "v.flac", 500.0, 1.0, 24000)
    recs = [SegmentRecord("a.flac", 3.0, 48000, "user", speaker="s1", split="train"),
            SegmentRecord("b.flac", 2.0, 16000, "user", speaker="s2", split="train"),
            SegmentRecord("short.flac", 0.1, 24000, "user", speaker="s3", split="train"),
            SegmentRecord("v.flac", 1.0, 24000, "user", speaker="s4", split="valid")]
    m = Manifest(recs, tmp_path)
    m.save(tmp_path / "manifest.jsonl")
    return m


def _dominant_freq(x, sr):
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return np.fft.rfftfreq(len(x), 1 / sr)[np.argmax(spec)]


def test_crops_have_fixed_shape_and_the_right_content(manifest):
    ds = SegmentDataset(manifest, "train", segment_samples=12000, sample_rate=24000, seed=0)
    assert len(ds) == int(np.ceil(5.1 * 24000 / 12000))
    seen = set()
    for i in range(len(ds)):
        c = ds.crop(i)
        assert c.audio.shape == (1, 12000) and c.audio.dtype == np.float32
        seen.add(c.record.path)
        if c.record.path == "short.flac":
            assert np.all(c.audio[0, 2400 + 200:] == 0)  # 0.1 s of tone, zero-padded
        else:
            expected = 440.0 if c.record.path == "a.flac" else 1000.0
            assert _dominant_freq(c.audio[0], 24000) == pytest.approx(expected, abs=4.0)
            assert np.max(np.abs(c.audio)) == pytest.approx(0.5, abs=0.02)
    assert {"a.flac", "b.flac"} <= seen
    t = ds[0]
    assert isinstance(t, torch.Tensor) and t.shape == (1, 12000)


def test_crops_are_reproducible_and_change_with_epoch_and_seed(manifest):
    a = SegmentDataset(manifest, "train", 4000, 16000, seed=1)
    b = SegmentDataset(manifest.root / "manifest.jsonl", "train", 4000, 16000, seed=1)
    assert all(torch.equal(a[i], b[i]) for i in range(len(a)))
    first = [a.crop(i).start_s for i in range(len(a))]
    a.set_epoch(1)
    assert [a.crop(i).start_s for i in range(len(a))] != first
    c = SegmentDataset(manifest, "train", 4000, 16000, seed=2)
    assert [c.crop(i).start_s for i in range(len(c))] != first


def test_longer_files_are_drawn_more_often(manifest):
    ds = SegmentDataset(manifest, "train", 160, 16000, seed=0, length=1500)
    counts = {}
    for i in range(len(ds)):
        path = ds.crop(i).record.path
        counts[path] = counts.get(path, 0) + 1
    assert counts["a.flac"] / 1500 == pytest.approx(3.0 / 5.1, abs=0.05)
    assert counts.get("short.flac", 0) / 1500 == pytest.approx(0.1 / 5.1, abs=0.015)


def test_works_with_a_dataloader(manifest):
    ds = SegmentDataset(manifest, "valid", 2400, 24000, seed=0, length=6)
    batches = list(torch.utils.data.DataLoader(ds, batch_size=3))
    assert [b.shape for b in batches] == [(3, 1, 2400)] * 2


def test_errors(manifest):
    with pytest.raises(UserError, match="no audio in split 'test'"):
        SegmentDataset(manifest, "test", 100, 16000)
    with pytest.raises(UserError):
        SegmentDataset(manifest, "train", 0, 16000)
    ds = SegmentDataset(manifest, "train", 100, 16000, length=2)
    with pytest.raises(IndexError):
        ds[2]
