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
import warnings
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
        _check_header(h)
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
        kbps = self.model.validate_bitrate(bitrate, x.shape[0])
        kbps = self.model.validate_bitrate(round(kbps * 1000) / 1000, x.shape[0])  # what the header can carry
        per_channel = self.model.channel_bitrate(kbps, x.shape[0])
        _warn_bandwidth(self.model, sample_rate)
        y = audio_io.resample(x, sample_rate, self.sample_rate)
        budget = payload_budget(self.model, kbps, x.shape[0], x.shape[1], sample_rate, y.shape[1])
        enc = self.model.compress(y, kbps, payload_budget_bytes=budget)
        header = StreamHeader(
            codec_id=self.name, codec_version=enc.codec_version or self.model.codec_version,
            config_hash=self.model.stream_config_hash(per_channel), sample_rate=sample_rate,
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
        versions = self.model.decodable_versions()
        if h.codec_version not in versions:
            raise UnsupportedVersionError(
                f"stream was made by {h.codec_id} version {h.codec_version}; this neurocodec decodes version "
                f"{' and '.join(str(v) for v in versions)}"
            )
        _check_header(h)
        installed = self.model.stream_config_hash(self.model.channel_bitrate(h.bitrate_bps / 1000, h.channels))
        if h.config_hash != installed:
            raise WeightsError(
                f"stream was made by a different configuration or weights of '{h.codec_id}' "
                f"(config hash {h.config_hash:08x}, installed {installed:08x})"
            )
        if h.codec_sample_rate != self.sample_rate:
            raise CorruptStreamError("stream header is inconsistent (codec sample rate)")
        y = self.model.decompress(stream.chunks, h.channels, h.codec_num_samples, h.bitrate_bps / 1000, **options)
        out_rate = _check_rate(sample_rate, "output ") if sample_rate else h.sample_rate
        x = audio_io.resample(np.asarray(y, dtype=np.float32), self.sample_rate, out_rate)
        n_out = h.num_samples if out_rate == h.sample_rate else int(round(h.num_samples * out_rate / h.sample_rate))
        return audio_io.fit_length(x, n_out), out_rate


def load(name: str = DEFAULT_CODEC, **kwargs) -> Codec:
    """Return the registered codec ``name`` (e.g. ``"mdct"``) ready to compress and decompress
    (:class:`WeightsError` for a learned codec that ships no trained weights at all)."""
    model = registry.create(name, **kwargs)
    missing = getattr(model, "missing_weights_error", None)
    if callable(missing) and missing() is not None:
        raise missing()
    return Codec(model)


#: highest sample rate (Hz) a stream may declare or a caller may ask for
MAX_SAMPLE_RATE = 768_000


class BandwidthWarning(UserWarning):
    """The codec keeps less audio bandwidth than the input has (shown once per input rate)."""


def _check_rate(rate: Any, what: str = "") -> int:
    r = int(rate)
    if not 0 < r <= MAX_SAMPLE_RATE:
        raise UserError(f"invalid {what}sample rate {r} (1 to {MAX_SAMPLE_RATE} Hz)")
    return r


def _check_header(h: StreamHeader) -> None:
    """Reject headers a decoder must not act on: rates out of range, or a codec-rate length
    that is not the resampled length of the original (only corruption makes them)."""
    if not (0 < h.sample_rate <= MAX_SAMPLE_RATE and 0 < h.codec_sample_rate <= MAX_SAMPLE_RATE):
        raise CorruptStreamError("stream header is inconsistent (sample rate out of range)")
    expected = h.num_samples * h.codec_sample_rate / h.sample_rate
    if h.num_samples < 1 or abs(h.codec_num_samples - expected) > 2 + 1e-6 * expected:
        raise CorruptStreamError("stream header is inconsistent (lengths)")
    if h.bitrate_bps <= 0:
        raise CorruptStreamError("stream header is inconsistent (bitrate)")


_WARNED: set[tuple[str, int]] = set()


def _warn_bandwidth(model: CodecModel, sample_rate: int) -> None:
    """Say once (per codec and input rate) that the codec drops the input's upper band: when
    the input runs faster than the codec (resampling down discards everything above the
    codec's band; a codec's own band edge at its native rate, such as AMR-WB's 7 kHz at 16 kHz,
    is listed by ``neurocodec codecs`` instead)."""
    bandwidth = float(model.audio_bandwidth_hz)
    if sample_rate <= model.sample_rate or (model.codec_id, sample_rate) in _WARNED:
        return
    _WARNED.add((model.codec_id, sample_rate))
    warnings.warn(BandwidthWarning(
        f"codec '{model.codec_id}' runs at {model.sample_rate} Hz and keeps audio up to {bandwidth / 1000:g} kHz; "
        f"the input ({sample_rate} Hz) has content up to {sample_rate / 2000:g} kHz that is not coded"), stacklevel=3)


def payload_budget(model: CodecModel, kbps: float, channels: int, num_samples: int, sample_rate: int,
                   codec_num_samples: int) -> int:
    """Bytes the payload chunks may occupy so that the whole stream of ``num_samples`` at
    ``sample_rate`` (``codec_num_samples`` at the codec's rate) fits ``kbps x duration``:
    the nominal size less the container's header and end marker and its per-chunk framing
    (for the chunk count the codec announces, :meth:`CodecModel.num_chunks`).  A codec that
    writes another codec's payload (``payload_framing_of``, mdct-gen) is budgeted as that one."""
    frame = framing(getattr(model, "payload_framing_of", model.codec_id))
    chunks = model.num_chunks(channels, codec_num_samples, kbps) or 0
    return int(kbps * 1000.0 / 8.0 * num_samples / sample_rate) - frame.bytes_for(chunks)


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
