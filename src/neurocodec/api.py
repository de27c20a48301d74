"""High-level API: ``neurocodec.load(name)`` returns a :class:`Codec` that turns audio at any
sample rate and channel count into a complete ``.ncdc`` byte string and back.

    >>> import neurocodec
    >>> codec = neurocodec.load("mdct")
    >>> data = codec.compress(wav, 44100, bitrate=16)   # wav: numpy or torch, (C, T) or (T,)
    >>> audio, sr = neurocodec.decompress(data)          # (C, T) float32 at 44100 Hz

The codec model runs at its own rate; the input is resampled with soxr and the original rate,
channel count and exact length are restored on decoding.
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from . import audio as audio_io
from . import stream
from .bitstream import SegmentEnd, Stream, StreamReader, unpack
from .codecs import registry
from .codecs.base import CodecModel
from .stream import _WARNED, MAX_SAMPLE_RATE, BandwidthWarning, _check_header, _check_rate, payload_budget  # noqa: F401
from .errors import UserError

DEFAULT_CODEC = "mdct"


@dataclass(frozen=True)
class StreamInfo:
    """What ``neurocodec info`` reports about a stream."""

    codec: str
    codec_version: int
    config_hash: str
    format_version: int
    sample_rate: int
    codec_sample_rate: int
    channels: int
    num_samples: int
    duration_s: float
    nominal_kbps: float
    file_bytes: int
    payload_bytes: int
    num_chunks: int
    measured_kbps: float
    num_segments: int = 0

    @classmethod
    def from_stream(cls, s: Stream) -> "StreamInfo":
        _check_header(s.header)
        return cls._of(s.header, s.num_bytes, sum(len(c) for c in s.chunks), len(s.chunks), len(s.segments))

    @classmethod
    def from_reader(cls, reader: StreamReader) -> "StreamInfo":
        """Read the rest of ``reader`` (verifying every record, keeping none) and describe it."""
        segments = sum(isinstance(r, SegmentEnd) for r in reader)
        _check_header(reader.header)
        return cls._of(reader.header, reader.num_bytes, reader.payload_bytes, reader.num_chunks, segments)

    @classmethod
    def _of(cls, h, file_bytes: int, payload_bytes: int, num_chunks: int, num_segments: int) -> "StreamInfo":
        return cls(
            codec=h.codec_id, codec_version=h.codec_version, config_hash=f"{h.config_hash:08x}",
            format_version=h.format_version, sample_rate=h.sample_rate,
            codec_sample_rate=h.codec_sample_rate, channels=h.channels, num_samples=h.num_samples,
            duration_s=h.duration, nominal_kbps=h.bitrate_bps / 1000, file_bytes=file_bytes,
            payload_bytes=payload_bytes, num_chunks=num_chunks,
            measured_kbps=8 * file_bytes / h.duration / 1000, num_segments=num_segments,
        )


class Codec:
    """A registered codec model plus resampling, channel handling and the container."""

    def __init__(self, model: CodecModel):
        self.model = model

    @property
    def name(self) -> str:
        return self.model.codec_id

    @property
    def sample_rate(self) -> int:
        return self.model.sample_rate

    def __repr__(self) -> str:
        return f"neurocodec.Codec({self.name!r}, sample_rate={self.sample_rate})"

    def compress(self, wav: Any, sample_rate: int, bitrate: float | None = None, channels: int | None = None) -> bytes:
        """Encode audio into a complete ``.ncdc`` byte string.

        ``wav`` is a numpy array or torch tensor, ``(channels, samples)`` or ``(samples,)``;
        ``bitrate`` in kbps is the total over all channels (each channel gets an equal share;
        None: the codec's default rate for every channel); ``channels=1`` downmixes to mono
        (the default codes every channel independently).  The whole file, container included,
        fits ``bitrate x duration`` where the codec controls its rate per file.
        """
        x = audio_io.validate(audio_io.as_array(wav))
        sample_rate = _check_rate(sample_rate)
        if channels is not None:
            if channels != 1:
                raise UserError("only --channels 1 (downmix to mono) is supported")
            x = x.mean(axis=0, keepdims=True)
        return stream.encode_array(self.model, x, sample_rate, bitrate, downmix=False)

    def decompress(self, data: bytes, sample_rate: int | None = None) -> tuple[np.ndarray, int]:
        """Decode a ``.ncdc`` byte string made by this codec into ``((C, T) float32, rate)``."""
        return stream.decode_bytes(data, sample_rate, self.model)


def load(name: str = DEFAULT_CODEC, **kwargs) -> Codec:
    """Return the registered codec ``name`` (e.g. ``"mdct"``) ready to compress and decompress
    (:class:`WeightsError` for a learned codec that ships no trained weights at all)."""
    model = registry.create(name, **kwargs)
    missing = getattr(model, "missing_weights_error", None)
    if callable(missing) and missing() is not None:
        raise missing()
    return Codec(model)


def info(data: bytes | BinaryIO) -> StreamInfo:
    """Describe a stream (bytes, or a binary file read to its end) without decoding its audio."""
    f = io.BytesIO(bytes(data)) if isinstance(data, (bytes, bytearray, memoryview)) else data
    return StreamInfo.from_reader(StreamReader(f))


def decompress(data: bytes, sample_rate: int | None = None, codec: str | None = None,
               **options) -> tuple[np.ndarray, int]:
    """Decode any ``.ncdc`` byte string with the codec named in its header, or with ``codec``
    (one that decodes that stream, e.g. ``mdct-gen`` for an ``mdct`` stream) and its decode
    ``options`` (``seed=``, ``mean=``)."""
    model = load(codec).model if codec else None
    return stream.decode_bytes(data, sample_rate, model, options)


def read_file(path: str | os.PathLike) -> bytes:
    """Read a stream file, turning OS errors into user errors."""
    p = Path(path)
    if not p.exists():
        raise UserError(f"input file not found: {p}")
    if p.is_dir():
        raise UserError(f"input is a directory: {p}")
    return p.read_bytes()
