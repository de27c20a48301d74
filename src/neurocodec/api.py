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

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import audio as audio_io
from .bitstream import Stream, StreamHeader, framing, pack, unpack
from .codecs import registry
from .codecs.base import CodecModel
from .errors import CorruptStreamError, StreamError, UnsupportedVersionError, UserError, WeightsError

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

    @classmethod
    def from_stream(cls, s: Stream) -> "StreamInfo":
        h = s.header
        return cls(
            codec=h.codec_id, codec_version=h.codec_version, config_hash=f"{h.config_hash:08x}",
            format_version=h.format_version, sample_rate=h.sample_rate,
            codec_sample_rate=h.codec_sample_rate, channels=h.channels, num_samples=h.num_samples,
            duration_s=h.duration, nominal_kbps=h.bitrate_bps / 1000, file_bytes=s.num_bytes,
            payload_bytes=sum(len(c) for c in s.chunks), num_chunks=len(s.chunks),
            measured_kbps=s.measured_kbps,
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
        ``bitrate`` in kbps (codec default when None); ``channels=1`` downmixes to mono
        (the default codes every channel independently).
        """
        kbps = self.model.validate_bitrate(bitrate)
        x = audio_io.validate(audio_io.as_array(wav))
        sample_rate = int(sample_rate)
        if sample_rate <= 0:
            raise UserError(f"invalid sample rate {sample_rate}")
        if channels is not None:
            if channels != 1:
                raise UserError("only --channels 1 (downmix to mono) is supported")
            x = x.mean(axis=0, keepdims=True)
        y = audio_io.resample(x, sample_rate, self.sample_rate)
        enc = self.model.compress(y, kbps, framing(self.name))
        header = StreamHeader(
            codec_id=self.name, codec_version=self.model.codec_version,
            config_hash=self.model.stream_config_hash(kbps), sample_rate=sample_rate,
            codec_sample_rate=self.sample_rate, channels=x.shape[0], num_samples=x.shape[1],
            codec_num_samples=y.shape[1], bitrate_bps=int(round(kbps * 1000)),
        )
        return pack(header, enc.chunks)

    def decompress(self, data: bytes, sample_rate: int | None = None) -> tuple[np.ndarray, int]:
        """Decode a ``.ncdc`` byte string made by this codec into ``((C, T) float32, rate)``."""
        return self.decode_stream(unpack(bytes(data)), sample_rate)

    def decode_stream(self, stream: Stream, sample_rate: int | None = None, **options) -> tuple[np.ndarray, int]:
        """Decode a parsed stream; ``options`` are the codec's decode options (``decode_options``,
        e.g. ``seed``/``mean`` of mdct-gen).  A codec may decode the streams of the codec ids in
        its ``decodes_streams_of`` (mdct-gen decodes mdct streams)."""
        h = stream.header
        if h.codec_id != self.name and h.codec_id not in getattr(self.model, "decodes_streams_of", ()):
            raise StreamError(f"stream was made by codec '{h.codec_id}', not '{self.name}'")
        bad = sorted(set(options) - set(getattr(self.model, "decode_options", ())))
        if bad:
            raise UserError(f"codec '{self.name}' has no decode option {', '.join(bad)}")
        if h.codec_version != self.model.codec_version:
            raise UnsupportedVersionError(
                f"stream was made by {h.codec_id} version {h.codec_version}; this neurocodec decodes version "
                f"{self.model.codec_version}"
            )
        installed = self.model.stream_config_hash(h.bitrate_bps / 1000)
        if h.config_hash != installed:
            raise WeightsError(
                f"stream was made by a different configuration or weights of '{h.codec_id}' "
                f"(config hash {h.config_hash:08x}, installed {installed:08x})"
            )
        if h.codec_sample_rate != self.sample_rate:
            raise CorruptStreamError("stream header is inconsistent (codec sample rate)")
        y = self.model.decompress(stream.chunks, h.channels, h.codec_num_samples, h.bitrate_bps / 1000, **options)
        out_rate = int(sample_rate) if sample_rate else h.sample_rate
        if out_rate <= 0:
            raise UserError(f"invalid output sample rate {out_rate}")
        x = audio_io.resample(np.asarray(y, dtype=np.float32), self.sample_rate, out_rate)
        n_out = h.num_samples if out_rate == h.sample_rate else int(round(h.num_samples * out_rate / h.sample_rate))
        return audio_io.fit_length(x, n_out), out_rate


def load(name: str = DEFAULT_CODEC, **kwargs) -> Codec:
    """Return the registered codec ``name`` (e.g. ``"mdct"``) ready to compress and decompress."""
    return Codec(registry.create(name, **kwargs))


def read_stream(data: bytes) -> Stream:
    """Parse and verify a stream (header, checksums, end marker)."""
    return unpack(bytes(data))


def info(data: bytes) -> StreamInfo:
    """Describe a stream without decoding its audio."""
    return StreamInfo.from_stream(unpack(bytes(data)))


def decompress(data: bytes, sample_rate: int | None = None, codec: str | None = None,
               **options) -> tuple[np.ndarray, int]:
    """Decode any ``.ncdc`` byte string with the codec named in its header, or with ``codec``
    (one that decodes that stream, e.g. ``mdct-gen`` for an ``mdct`` stream) and its decode
    ``options`` (``seed=``, ``mean=``)."""
    stream = unpack(bytes(data))
    return load(codec or stream.header.codec_id).decode_stream(stream, sample_rate, **options)


def read_file(path: str | os.PathLike) -> bytes:
    """Read a stream file, turning OS errors into user errors."""
    p = Path(path)
    if not p.exists():
        raise UserError(f"input file not found: {p}")
    if p.is_dir():
        raise UserError(f"input is a directory: {p}")
    return p.read_bytes()
