"""Coding in bounded memory, block by block, from file or pipe to file or pipe (api layer).

:class:`Encoder` takes audio blocks at any rate, resamples them as a stream (soxr, the same
samples as a one-shot resampling), feeds the codec and writes each container record as soon
as the codec finishes it; :func:`decode` reads records one at a time and writes audio as the
codec releases it.  How a codec is fed depends on what it offers:

* **incremental codecs** (``mdct``, ``pcm``) have ``stream_encoder(kbps, channels,
  num_samples)`` and ``stream_decoder(kbps, channels)`` objects: the encoder's ``push(block)``
  returns finished chunks and ``finish()`` the rest; the decoder's ``push(chunk)`` returns
  finished audio and ``finish(num_samples)`` the rest.  Memory holds about one chunk (1 s);
  a pipe's decoded audio trails its input by a chunk or two.  Given the length up front they
  write the same bytes as ``compress``.
* **every other codec** (``cq``, ``cmrl`` and the baselines) is coded in independent segments
  of :data:`SEGMENT_SECONDS` at the codec rate, each through ``compress``/``decompress``;
  a segment mark in the container (format version 2, docs/bitstream.md) ends each one.
  Memory holds one segment; decoded audio trails by a segment.  A stream of known length
  that fits one segment is not cut (version 1: the bytes of ``compress`` on the whole signal).

The header is written before any audio is coded: with a known length the stream is version 1
(or version 2 segmented); from a pipe it is version 2 with the length in the end marker.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from typing import BinaryIO, Callable, Iterable

import numpy as np
import soxr

from .bitstream import (
    FLAG_LENGTH_AT_END,
    FLAG_SEGMENTED,
    SegmentEnd,
    StreamHeader,
    StreamReader,
    StreamWriter,
    framing,
)
from .bitstream.container import CHUNK_OVERHEAD_BYTES, END_MARKER_V2_BYTES, SEGMENT_MARK_BYTES, Framing
from .codecs import registry
from .codecs.base import CodecModel
from .errors import AudioError, CorruptStreamError, StreamError, UnsupportedVersionError, UserError, WeightsError

#: length of the independently coded segments of codecs without an incremental coder
SEGMENT_SECONDS = 30.0
#: audio samples (at the input rate) read per block
BLOCK_SAMPLES = 16384
#: decoded samples held back when the final length is only known at the end of the stream
_HOLD_BACK = 8192


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


def encodes_incrementally(model: CodecModel) -> bool:
    """Whether ``model`` encodes chunk by chunk itself (else it is coded in segments)."""
    return callable(getattr(model, "stream_encoder", None))


def decodes_incrementally(model: CodecModel) -> bool:
    """Whether ``model`` decodes chunk by chunk itself (mdct-gen writes mdct's chunks
    incrementally but decodes whole streams)."""
    return callable(getattr(model, "stream_decoder", None))


def is_incremental(model: CodecModel) -> bool:
    """Whether ``model`` both encodes and decodes chunk by chunk."""
    return encodes_incrementally(model) and decodes_incrementally(model)


def _pipe_rate(model: CodecModel, kbps: float, channels: int) -> float:
    """The rate left for the payload of a stream of unknown length: ``kbps`` less the
    container's per-chunk framing at the chunk rate the codec announces."""
    probe = 60 * model.sample_rate
    n = model.num_chunks(channels, probe, kbps) or 0
    return kbps - 8.0 * CHUNK_OVERHEAD_BYTES * n / 60.0 / 1000.0


def segment_samples(model: CodecModel) -> int:
    return int(round(SEGMENT_SECONDS * model.sample_rate))


def codec_length(num_samples: int, sample_rate: int, codec_rate: int) -> int:
    """Samples at the codec rate of ``num_samples`` at ``sample_rate`` (what soxr returns)."""
    if sample_rate == codec_rate:
        return int(num_samples)
    return int(round(num_samples * codec_rate / sample_rate))


class _Resampler:
    """soxr in streaming mode (VHQ, float64 as :func:`neurocodec.audio.resample`), or nothing."""

    def __init__(self, sr_in: int, sr_out: int, channels: int):
        self._rs = None if sr_in == sr_out else soxr.ResampleStream(sr_in, sr_out, channels, dtype="float64",
                                                                     quality="VHQ")
        self.channels = channels

    def __call__(self, x: np.ndarray, last: bool = False) -> np.ndarray:
        if self._rs is None:
            return x
        y = self._rs.resample_chunk(np.ascontiguousarray(x.T, dtype=np.float64), last=last)
        return np.ascontiguousarray(np.asarray(y, dtype=np.float32).reshape(-1, self.channels).T)


class _SegmentEncoder:
    """Cuts the signal into segments coded by ``model.compress``; records: chunks and marks."""

    def __init__(self, model: CodecModel, kbps: float, channels: int, marks: bool, first_framing: Framing,
                 whole_budget: int | None = None):
        self.model, self.kbps, self.channels, self.marks = model, kbps, channels, marks
        self.whole_budget = whole_budget  # the payload budget of an unsegmented stream of known length
        self.seg = segment_samples(model)
        self.parts: list[np.ndarray] = []
        self.held = 0
        self.received = 0
        self.framing = first_framing

    def _budget(self, x: np.ndarray) -> int:
        """Payload bytes of a segment: its share of ``kbps x duration`` less its framing."""
        if not self.marks and self.whole_budget is not None:
            return self.whole_budget
        n = self.model.num_chunks(self.channels, x.shape[1], self.kbps) or 0
        return int(self.kbps * 1000.0 / 8.0 * x.shape[1] / self.model.sample_rate) - self.framing.bytes_for(n)

    def _code(self, x: np.ndarray) -> list:
        enc = self.model.compress(x, self.kbps, payload_budget_bytes=self._budget(x))
        self.framing = Framing(stream_bytes=SEGMENT_MARK_BYTES, chunk_bytes=CHUNK_OVERHEAD_BYTES)
        return list(enc.chunks) + ([SegmentEnd(x.shape[1])] if self.marks else [])

    def push(self, block: np.ndarray) -> list:
        self.parts.append(block)
        self.held += block.shape[1]
        self.received += block.shape[1]
        out = []
        while self.marks and self.held >= self.seg:
            x = np.concatenate(self.parts, axis=1)
            out += self._code(np.ascontiguousarray(x[:, :self.seg]))
            rest = x[:, self.seg:]
            self.parts, self.held = ([rest] if rest.shape[1] else []), rest.shape[1]
        return out

    def finish(self) -> list:
        if self.received == 0:
            raise AudioError("audio is empty (0 samples)")
        if not self.held:
            return []
        x = np.concatenate(self.parts, axis=1)
        self.parts, self.held = [], 0
        return self._code(x)


class _SegmentDecoder:
    """Decodes each segment (or, unsegmented, the whole stream) with ``model.decompress``."""

    def __init__(self, model: CodecModel, kbps: float, channels: int, segmented: bool,
                 options: dict | None = None):
        self.model, self.kbps, self.channels, self.segmented = model, kbps, channels, segmented
        self.options = dict(options or {})
        self.chunks: list[bytes] = []

    def push(self, record) -> np.ndarray:
        if isinstance(record, SegmentEnd):
            chunks, self.chunks = self.chunks, []
            return np.asarray(self.model.decompress(chunks, self.channels, record.codec_samples, self.kbps,
                                                    **self.options), dtype=np.float32)
        self.chunks.append(record)
        return np.zeros((self.channels, 0), dtype=np.float32)

    def finish(self, codec_num_samples: int) -> np.ndarray:
        if self.segmented:
            return np.zeros((self.channels, 0), dtype=np.float32)
        chunks, self.chunks = self.chunks, []
        return np.asarray(self.model.decompress(chunks, self.channels, codec_num_samples, self.kbps,
                                                **self.options), dtype=np.float32)


class _IncrementalDecoder:
    def __init__(self, dec):
        self.dec = dec

    def push(self, record) -> np.ndarray:
        if isinstance(record, SegmentEnd):
            raise CorruptStreamError("stream is corrupted (segment mark for an incremental codec)")
        return self.dec.push(record)

    def finish(self, codec_num_samples: int) -> np.ndarray:
        return self.dec.finish(codec_num_samples)


@dataclass(frozen=True)
class EncodeResult:
    """What :class:`Encoder` wrote: the final header and the stream's size."""

    header: StreamHeader
    num_bytes: int
    num_chunks: int
    payload_bytes: int

    @property
    def measured_kbps(self) -> float:
        return 8 * self.num_bytes / self.header.duration / 1000


class Encoder:
    """Encode audio pushed block by block into a ``.ncdc`` stream written to ``out``.

    ``num_samples`` (at ``sample_rate``) is the input length when known (a file), None for a
    pipe; ``downmix`` codes the mean of the channels.  :meth:`write` takes float32
    ``(channels, n)`` blocks, :meth:`close` ends the stream."""

    def __init__(self, model: CodecModel, out: BinaryIO, sample_rate: int, channels: int,
                 num_samples: int | None, bitrate: float | None = None, downmix: bool = False):
        self.model = model
        self.sample_rate = _check_rate(sample_rate)
        if not 1 <= channels <= 255:
            raise AudioError(f"audio has {channels} channels; at most 255 are supported")
        self.in_channels = int(channels)
        self.downmix = downmix
        self.channels = 1 if downmix else self.in_channels
        kbps = model.validate_bitrate(bitrate, self.channels)  # the total over the coded channels
        self.kbps = model.validate_bitrate(round(kbps * 1000) / 1000, self.channels)  # what the header carries
        per_channel = model.channel_bitrate(self.kbps, self.channels)
        _warn_bandwidth(model, self.sample_rate)
        self.num_samples = None if num_samples is None else int(num_samples)
        if self.num_samples is not None and self.num_samples <= 0:
            raise AudioError("audio is empty (0 samples)")
        self.codec_rate = model.sample_rate
        self.codec_samples = (None if self.num_samples is None
                              else codec_length(self.num_samples, self.sample_rate, self.codec_rate))
        incremental = encodes_incrementally(model)
        flags, version = 0, 1
        if self.codec_samples is None:
            flags, version = FLAG_LENGTH_AT_END | (0 if incremental else FLAG_SEGMENTED), 2
        elif not incremental and self.codec_samples > segment_samples(model):
            flags, version = FLAG_SEGMENTED, 2
        self.header = StreamHeader(
            codec_id=model.codec_id, codec_version=model.codec_version,
            config_hash=model.stream_config_hash(per_channel), sample_rate=self.sample_rate,
            codec_sample_rate=self.codec_rate, channels=self.channels,
            num_samples=self.num_samples or 0, codec_num_samples=self.codec_samples or 0,
            bitrate_bps=int(round(self.kbps * 1000)), flags=flags, format_version=version,
        )
        self.writer = StreamWriter(out, self.header)
        whole = (None if self.codec_samples is None else
                 payload_budget(model, self.kbps, self.channels, self.num_samples, self.sample_rate,
                                self.codec_samples))
        if incremental and self.codec_samples is not None:
            self.coder = model.stream_encoder(self.kbps, self.channels, self.codec_samples,
                                              payload_budget_bytes=whole)
        elif incremental:
            self.coder = model.stream_encoder(_pipe_rate(model, self.kbps, self.channels), self.channels, None)
        else:
            first = framing(getattr(model, "payload_framing_of", model.codec_id))
            if version == 2:
                first = Framing(stream_bytes=first.stream_bytes - 8 + END_MARKER_V2_BYTES + SEGMENT_MARK_BYTES,
                                chunk_bytes=first.chunk_bytes)
            self.coder = _SegmentEncoder(model, self.kbps, self.channels, bool(flags & FLAG_SEGMENTED), first,
                                         whole if version == 1 else None)
        self.resampler = _Resampler(self.sample_rate, self.codec_rate, self.channels)
        self.received = 0
        self.coded = 0

    def _emit(self, records: Iterable) -> None:
        for r in records:
            if isinstance(r, SegmentEnd):
                self.writer.segment_end(r.codec_samples)
            else:
                self.writer.chunk(r)

    def _feed(self, y: np.ndarray) -> None:
        if self.codec_samples is not None:  # the length announced in the header, exactly
            y = y[:, : max(self.codec_samples - self.coded, 0)]
        if y.shape[1]:
            self.coded += y.shape[1]
            self._emit(self.coder.push(y))

    def write(self, block: np.ndarray) -> None:
        x = np.asarray(block, dtype=np.float32)
        if x.ndim != 2 or x.shape[0] != self.in_channels:
            raise AudioError(f"expected ({self.in_channels}, n) audio blocks, got shape {x.shape}")
        if not np.all(np.isfinite(x)):
            raise AudioError("audio contains NaN or Inf samples")
        if self.num_samples is not None and self.received + x.shape[1] > self.num_samples:
            raise AudioError(f"audio is longer than the {self.num_samples} samples announced")
        self.received += x.shape[1]
        if self.downmix:
            x = x.mean(axis=0, keepdims=True)
        self._feed(self.resampler(x))

    def close(self) -> EncodeResult:
        if self.received == 0:
            raise AudioError("audio is empty (0 samples)")
        if self.num_samples is not None and self.received != self.num_samples:
            raise AudioError(f"audio ended after {self.received} of {self.num_samples} samples")
        self._feed(self.resampler(np.zeros((self.channels, 0), dtype=np.float32), last=True))
        target = self.codec_samples if self.codec_samples is not None else self.coded
        if self.coded < target:  # resampler delivered fewer samples than the header says
            self._feed(np.zeros((self.channels, target - self.coded), dtype=np.float32))
        if self.coded == 0:
            raise AudioError("audio is too short to resample (0 samples at the codec rate)")
        self._emit(self.coder.finish())
        header = self.writer.finish(self.received, self.coded)
        return EncodeResult(header, self.writer.num_bytes, self.writer.num_chunks, self.writer.payload_bytes)


def encode_array(model: CodecModel, x: np.ndarray, sample_rate: int, bitrate: float | None = None,
                 downmix: bool = False) -> bytes:
    """A complete stream of the whole ``(C, T)`` array (the bytes the CLI writes for a file)."""
    buf = io.BytesIO()
    enc = Encoder(model, buf, sample_rate, x.shape[0], x.shape[1], bitrate, downmix)
    for s in range(0, x.shape[1], 1 << 20):
        enc.write(x[:, s:s + (1 << 20)])
    enc.close()
    return buf.getvalue()


# -- decoding -------------------------------------------------------------------------------

def check_header(model: CodecModel, h: StreamHeader, options: dict | None = None) -> None:
    """Refuse a stream that ``model`` (as installed) cannot decode, or decode ``options`` it
    does not take.  A model may decode the streams of the ids in its ``decodes_streams_of``
    (mdct-gen decodes mdct streams)."""
    if h.codec_id != model.codec_id and h.codec_id not in getattr(model, "decodes_streams_of", ()):
        raise StreamError(f"stream was made by codec '{h.codec_id}', not '{model.codec_id}'")
    bad = sorted(set(options or {}) - set(getattr(model, "decode_options", ())))
    if bad:
        raise UserError(f"codec '{model.codec_id}' has no decode option {', '.join(bad)}")
    versions = model.decodable_versions()
    if h.codec_version not in versions:
        raise UnsupportedVersionError(
            f"stream was made by {h.codec_id} version {h.codec_version}; this neurocodec decodes version "
            f"{' and '.join(str(v) for v in versions)}"
        )
    if not h.length_at_end:
        _check_header(h)
    installed = model.stream_config_hash(model.channel_bitrate(h.bitrate_bps / 1000, h.channels))
    if h.config_hash != installed:
        raise WeightsError(
            f"stream was made by a different configuration or weights of '{h.codec_id}' "
            f"(config hash {h.config_hash:08x}, installed {installed:08x})"
        )
    if h.codec_sample_rate != model.sample_rate:
        raise CorruptStreamError("stream header is inconsistent (codec sample rate)")


class Decoder:
    """Decodes the records of a :class:`StreamReader` (header already read and checked here:
    ``out_rate`` and ``channels`` are known before :meth:`run`) into audio blocks handed to a
    sink as the codec releases them."""

    def __init__(self, reader: StreamReader, sample_rate: int | None = None, model: CodecModel | None = None,
                 progress: Callable[[float], None] | None = None, options: dict | None = None):
        self.reader, self.progress = reader, progress
        self.sink: Callable[[np.ndarray], None] = lambda x: None
        h = reader.header
        if h.sample_rate <= 0 or h.sample_rate > MAX_SAMPLE_RATE or h.channels < 1:
            raise CorruptStreamError("stream header is inconsistent (sample rate or channels)")
        self.model = model if model is not None else registry.create(h.codec_id)
        check_header(self.model, h, options)
        self.out_rate = _check_rate(sample_rate, "output ") if sample_rate else h.sample_rate
        kbps = h.bitrate_bps / 1000
        if h.segmented or not decodes_incrementally(self.model):
            self.dec = _SegmentDecoder(self.model, kbps, h.channels, h.segmented, options)
        else:
            self.dec = _IncrementalDecoder(self.model.stream_decoder(kbps, h.channels))
        self.resampler = _Resampler(self.model.sample_rate, self.out_rate, h.channels)
        self.channels = h.channels
        self.n_out = None if h.length_at_end else self._out_length(h)
        self.written = 0
        self.held = np.zeros((self.channels, 0), dtype=np.float32)

    def _out_length(self, h: StreamHeader) -> int:
        if self.out_rate == h.sample_rate:
            return h.num_samples
        return int(round(h.num_samples * self.out_rate / h.sample_rate))

    def _emit(self, y: np.ndarray, final: bool = False) -> None:
        if self.progress is not None and y.shape[1]:
            self.progress(y.shape[1] / self.model.sample_rate)
        x = self.resampler(y, last=final)
        if self.n_out is not None:
            x = x[:, : max(self.n_out - self.written, 0)]
            if x.shape[1]:
                self.sink(x)
                self.written += x.shape[1]
            return
        # final length unknown until the end marker: keep the last samples back to trim them
        x = np.concatenate([self.held, x], axis=1) if self.held.shape[1] else x
        cut = max(x.shape[1] - _HOLD_BACK, 0)
        if cut:
            self.sink(x[:, :cut])
            self.written += cut
        self.held = x[:, cut:]

    def run(self, sink: Callable[[np.ndarray], None]) -> StreamHeader:
        """Decode to the end of the stream, calling ``sink`` with float32 ``(C, n)`` blocks at
        ``out_rate`` (exactly the original length in all); returns the final header."""
        self.sink = sink
        for record in self.reader:
            y = self.dec.push(record)
            if y.shape[1]:
                self._emit(y)
        h = self.reader.header
        if h.length_at_end:
            _check_header(h)
        self._emit(self.dec.finish(h.codec_num_samples), final=True)
        if self.n_out is None:
            self.n_out = self._out_length(h)
            rest = self.n_out - self.written
            if rest < 0:
                raise CorruptStreamError("stream is inconsistent (decoded more audio than its length)")
            x = self.held[:, :rest]
            if x.shape[1] < rest:
                x = np.concatenate([x, np.zeros((self.channels, rest - x.shape[1]), np.float32)], axis=1)
            if x.shape[1]:
                self.sink(x)
                self.written += x.shape[1]
        elif self.written < self.n_out:
            self.sink(np.zeros((self.channels, self.n_out - self.written), dtype=np.float32))
            self.written = self.n_out
        return h


def decode_bytes(data: bytes, sample_rate: int | None = None, model: CodecModel | None = None,
                 options: dict | None = None) -> tuple[np.ndarray, int]:
    """Decode a complete stream held in memory into ``((C, T) float32, rate)``; ``model``
    (default: the stream's codec) and its decode ``options``."""
    reader = StreamReader(io.BytesIO(bytes(data)))
    parts: list[np.ndarray] = []
    dec = Decoder(reader, sample_rate, model, options=options)
    dec.run(parts.append)
    out = np.concatenate(parts, axis=1) if parts else np.zeros((dec.channels, 0), np.float32)
    return out, dec.out_rate
