"""Helpers for the baseline tests: instantiating codecs (skipping when a tool is missing),
cached round trips of examples/speech.flac, PESQ and lag estimates."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from neurocodec import baselines
from neurocodec.audio import read_audio, resample
from neurocodec.codecs.base import EncodedAudio
from neurocodec.errors import MissingToolError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ALL_IDS = list(baselines.BASELINES)


_CODECS: dict[tuple, object] = {}


def make(codec_id: str, **kwargs):
    """The baseline ``codec_id`` (cached: baselines keep no state between calls), or skip the
    test naming the missing Debian package."""
    key = (codec_id, tuple(sorted(kwargs.items())))
    if key not in _CODECS:
        try:
            _CODECS[key] = baselines.create(codec_id, **kwargs)
        except MissingToolError as exc:
            pytest.skip(f"{codec_id}: {exc}")
    return _CODECS[key]


_SPEECH: dict[int, np.ndarray] = {}


def speech(sample_rate: int = 16000) -> np.ndarray:
    """examples/speech.flac (16 kHz mono, 8 s) as (1, N) float32 at ``sample_rate``."""
    if sample_rate not in _SPEECH:
        x, sr = read_audio(EXAMPLES / "speech.flac")
        assert sr == 16000 and x.shape == (1, 128000)
        _SPEECH[sample_rate] = resample(x, sr, sample_rate)
    return _SPEECH[sample_rate]


@dataclass
class RoundTrip:
    """One compress/decompress of speech.flac: payload, output and measured rate."""

    enc: EncodedAudio
    out: np.ndarray
    inp: np.ndarray
    sample_rate: int
    _pesq: list = field(default_factory=list)

    @property
    def measured_kbps(self) -> float:
        return 8 * self.enc.num_bytes / (self.inp.shape[1] / self.sample_rate) / 1000

    def pesq_wb(self) -> float:
        """PESQ-WB (P.862.2) of the output against speech.flac, computed once."""
        if not self._pesq:
            from pesq import pesq

            ref = speech(16000)[0]
            deg = resample(self.out, self.sample_rate, 16000)[0][: ref.shape[0]]
            self._pesq.append(float(pesq(16000, ref, deg, "wb")))
        return self._pesq[0]


_CACHE: dict[tuple, RoundTrip] = {}


def roundtrip(codec_id: str, kbps: float, **kwargs) -> RoundTrip:
    """Cached round trip of speech.flac through ``codec_id`` at ``kbps``."""
    key = (codec_id, kbps, tuple(sorted(kwargs.items())))
    if key not in _CACHE:
        codec = make(codec_id, **kwargs)
        x = speech(codec.sample_rate)
        enc = codec.compress(x, kbps)
        out = codec.decompress(enc.chunks, enc.num_channels, enc.num_samples, enc.bitrate_kbps)
        _CACHE[key] = RoundTrip(enc, out, x, codec.sample_rate)
    return _CACHE[key]


def lag(a: np.ndarray, b: np.ndarray, max_lag: int = 2000) -> int:
    """Samples by which ``b`` lags ``a`` (peak of their FFT cross-correlation)."""
    n = min(a.shape[0], b.shape[0])
    size = 1 << int(np.ceil(np.log2(2 * n)))
    c = np.fft.irfft(np.conj(np.fft.rfft(a[:n], size)) * np.fft.rfft(b[:n], size), size)
    c = np.concatenate([c[-max_lag:], c[: max_lag + 1]])
    return int(np.argmax(c)) - max_lag


def envelope(x: np.ndarray, sample_rate: int, ms: float = 10.0) -> np.ndarray:
    """Hann-smoothed RMS envelope, mean removed (for vocoders, whose phase is not kept)."""
    h = int(sample_rate * ms / 1000)
    e = np.sqrt(np.convolve(x.astype(np.float64) ** 2, np.hanning(2 * h + 1), "same"))
    return e - e.mean()
