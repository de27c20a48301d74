"""The ``.ncdc`` container: a versioned, checksummed wrapper around a codec's payload chunks.

Layout (all integers big-endian; docs/bitstream.md describes it byte by byte)::

    header  := magic "NCDC" | u8 format_version | u8 codec_id_len | codec_id (ASCII)
               | u16 codec_version | u32 config_hash | u32 sample_rate | u32 codec_sample_rate
               | u8 channels | u64 num_samples | u64 codec_num_samples | u32 bitrate_bps
               | u16 flags | u32 crc32(all preceding header bytes)
    chunk   := u32 length | payload[length] | u32 crc32(u32 index | u32 length | payload)

    version 1:
    stream  := header chunk* end1
    end1    := u32 0 | u32 crc32(u32 index | u32 0)

    version 2 (streams whose length is unknown when the header is written, or cut in segments):
    stream  := header (chunk | mark)* end2
    mark    := u32 0xFFFFFFFF | u64 segment_codec_samples | u32 crc32(u32 index | u32 0xFFFFFFFF | u64)
    end2    := u32 0 | u64 num_samples | u64 codec_num_samples | u32 crc32(u32 index | u32 0 | u64 | u64)

In version 2 ``index`` counts records (chunks and marks); flag bit 0 (:data:`FLAG_LENGTH_AT_END`)
says the header's two lengths are 0 and only the end marker knows them, bit 1
(:data:`FLAG_SEGMENTED`) that every segment of independently coded audio ends with a mark.
Writers emit version 1 whenever it can describe the stream (known length, one segment), so the
bytes of such files are those of earlier releases; readers read both.

Chunks are written as the encoder produces them (:class:`StreamWriter`) and read one record at
a time (:class:`StreamReader`), so long files and pipes stream in both directions.  The index
inside each CRC detects dropped, duplicated or reordered records; the end marker detects
truncation at a record boundary; trailing bytes after the end marker are rejected.  Nothing in
the format is pickled or free-form JSON.
"""

from __future__ import annotations

import dataclasses
import io
import re
import struct
import zlib
from dataclasses import dataclass, field
from typing import BinaryIO, Iterable, Iterator, Union

from ..errors import CorruptStreamError, NotAStreamError, TruncatedStreamError, UnsupportedVersionError

MAGIC = b"NCDC"
#: newest format version this module reads and writes (it writes 1 where that suffices)
FORMAT_VERSION = 2
SUPPORTED_VERSIONS = (1, 2)
MAX_CHUNK_BYTES = 1 << 26  # 64 MiB: larger lengths can only come from corruption
_CODEC_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_.\-]{0,63}$")

#: version 2 flag: num_samples and codec_num_samples are 0 in the header and carried by the end marker
FLAG_LENGTH_AT_END = 0x0001
#: version 2 flag: the stream is cut into independently coded segments, each ended by a mark
FLAG_SEGMENTED = 0x0002
_KNOWN_FLAGS = FLAG_LENGTH_AT_END | FLAG_SEGMENTED

_FIXED_AFTER_ID = struct.Struct(">HIIIBQQIH")  # codec_version .. flags
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_LENGTHS = struct.Struct(">QQ")
_CHUNK_HEAD = struct.Struct(">II")  # index, length (what the chunk CRC covers before payload)
_MARK = 0xFFFFFFFF

#: bytes added to the payload per chunk (length + CRC) and by the end marker (version 1)
CHUNK_OVERHEAD_BYTES = 8
END_MARKER_BYTES = 8
#: bytes of a version-2 end marker and of a segment mark
END_MARKER_V2_BYTES = 24
SEGMENT_MARK_BYTES = 16


@dataclass(frozen=True)
class Framing:
    """Bytes the container adds around a codec's payload: ``stream_bytes`` once per stream
    (header, end marker) and ``chunk_bytes`` per payload chunk (``neurocodec.api`` takes them
    out of the payload budget it hands the codec)."""

    stream_bytes: int = 0
    chunk_bytes: int = 0

    def bytes_for(self, num_chunks: int) -> int:
        """Framing bytes of a stream of ``num_chunks`` chunks."""
        return self.stream_bytes + self.chunk_bytes * int(num_chunks)


@dataclass(frozen=True)
class StreamHeader:
    """Everything the header of a ``.ncdc`` stream records.  After reading a version-2 stream
    with :data:`FLAG_LENGTH_AT_END` to its end, the lengths are those of the end marker."""

    codec_id: str
    codec_version: int
    config_hash: int
    sample_rate: int
    codec_sample_rate: int
    channels: int
    num_samples: int
    codec_num_samples: int
    bitrate_bps: int
    flags: int = 0
    format_version: int = 1

    @property
    def duration(self) -> float:
        """Duration in seconds of the original signal."""
        return self.num_samples / self.sample_rate

    @property
    def length_at_end(self) -> bool:
        return self.format_version >= 2 and bool(self.flags & FLAG_LENGTH_AT_END)

    @property
    def segmented(self) -> bool:
        return self.format_version >= 2 and bool(self.flags & FLAG_SEGMENTED)

    def validate(self) -> None:
        if not _CODEC_ID_RE.match(self.codec_id):
            raise ValueError(f"invalid codec id {self.codec_id!r}")
        if not 1 <= self.channels <= 255:
            raise ValueError("channels must be 1..255")
        if self.sample_rate <= 0 or self.codec_sample_rate <= 0:
            raise ValueError("sample rates must be positive")
        if self.format_version not in SUPPORTED_VERSIONS:
            raise ValueError(f"format version {self.format_version} is not supported")
        if self.format_version >= 2:
            if self.flags & ~_KNOWN_FLAGS:
                raise ValueError(f"unknown flags {self.flags:#06x}")
            if self.length_at_end and (self.num_samples or self.codec_num_samples):
                raise ValueError("a stream with its length at the end has zero lengths in the header")

    def to_bytes(self) -> bytes:
        self.validate()
        cid = self.codec_id.encode("ascii")
        body = (
            MAGIC
            + bytes([self.format_version, len(cid)])
            + cid
            + _FIXED_AFTER_ID.pack(
                self.codec_version, self.config_hash & 0xFFFFFFFF, self.sample_rate,
                self.codec_sample_rate, self.channels, self.num_samples, self.codec_num_samples,
                self.bitrate_bps, self.flags,
            )
        )
        return body + _U32.pack(zlib.crc32(body) & 0xFFFFFFFF)


def _read_exact(f: BinaryIO, n: int, what: str) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise TruncatedStreamError(f"stream is truncated (ends inside the {what})")
    return data


def read_header(f: BinaryIO) -> StreamHeader:
    """Read and verify a header from a binary file object positioned at its start."""
    magic = f.read(4)
    if magic != MAGIC:
        if len(magic) < 4 and MAGIC.startswith(magic) and magic:
            raise TruncatedStreamError("stream is truncated (ends inside the header)")
        raise NotAStreamError("not a neurocodec stream (bad magic; expected a .ncdc file)")
    head = _read_exact(f, 2, "header")
    version, id_len = head[0], head[1]
    if version not in SUPPORTED_VERSIONS:
        # The CRC cannot be checked without knowing the layout of an unknown version.
        raise UnsupportedVersionError(
            f"stream format version {version} is not supported (this neurocodec reads versions "
            f"{', '.join(map(str, SUPPORTED_VERSIONS))})"
        )
    cid = _read_exact(f, id_len, "header")
    fixed = _read_exact(f, _FIXED_AFTER_ID.size, "header")
    (crc,) = _U32.unpack(_read_exact(f, 4, "header"))
    body = magic + head + cid + fixed
    if zlib.crc32(body) & 0xFFFFFFFF != crc:
        raise CorruptStreamError("stream header is corrupted (CRC mismatch)")
    fields = _FIXED_AFTER_ID.unpack(fixed)
    try:
        codec_id = cid.decode("ascii")
    except UnicodeDecodeError:
        raise CorruptStreamError("stream header is corrupted (codec id is not ASCII)") from None
    header = StreamHeader(codec_id, *fields, format_version=version)
    try:
        header.validate()
    except ValueError as e:
        raise CorruptStreamError(f"stream header is inconsistent: {e}") from None
    return header


def _crc(index: int, tag: int, body: bytes) -> int:
    return zlib.crc32(body, zlib.crc32(_CHUNK_HEAD.pack(index, tag))) & 0xFFFFFFFF


def _chunk_crc(index: int, payload: bytes) -> int:
    return _crc(index, len(payload), payload)


@dataclass(frozen=True)
class SegmentEnd:
    """A version-2 segment mark: the segment just ended holds ``codec_samples`` samples per
    channel at the codec rate."""

    codec_samples: int


Record = Union[bytes, SegmentEnd]


class StreamReader:
    """Reads a stream record by record from a binary file object (a file, a pipe, stdin).

    ``header`` is read on construction; iterating yields chunk payloads (``bytes``) and, in
    segmented streams, :class:`SegmentEnd` marks, verifying every CRC; after the end marker
    ``header`` carries the final lengths, ``num_bytes`` the stream's size and ``finished`` is
    True.  Truncation, corruption and trailing bytes raise :class:`StreamError` subclasses."""

    def __init__(self, f: BinaryIO, header: StreamHeader | None = None):
        self._f = f
        self.header = read_header(f) if header is None else header
        self.num_bytes = len(self.header.to_bytes())
        self.finished = False
        self.num_chunks = 0
        self.payload_bytes = 0

    def __iter__(self) -> Iterator[Record]:
        f, h = self._f, self.header
        v2 = h.format_version >= 2
        index = 0
        seg_total = 0
        open_segment = False
        while True:
            raw_len = f.read(4)
            if len(raw_len) != 4:
                raise TruncatedStreamError(f"stream is truncated (missing record {index} or end marker)")
            (length,) = _U32.unpack(raw_len)
            if v2 and length == _MARK:
                body = _read_exact(f, 8, f"segment mark {index}")
                (crc,) = _U32.unpack(_read_exact(f, 4, f"checksum of record {index}"))
                if _crc(index, _MARK, body) != crc:
                    raise CorruptStreamError(f"stream is corrupted (CRC mismatch in record {index})")
                if not h.segmented:
                    raise CorruptStreamError("stream is corrupted (segment mark in an unsegmented stream)")
                (n,) = _U64.unpack(body)
                if n == 0 or not open_segment:
                    raise CorruptStreamError("stream is corrupted (empty segment)")
                self.num_bytes += SEGMENT_MARK_BYTES
                seg_total += n
                open_segment = False
                index += 1
                yield SegmentEnd(n)
                continue
            if length > MAX_CHUNK_BYTES:
                raise CorruptStreamError(f"stream is corrupted (record {index} claims {length} bytes)")
            if length == 0:
                body = _read_exact(f, _LENGTHS.size, "end marker") if v2 else b""
                (crc,) = _U32.unpack(_read_exact(f, 4, "end marker"))
                if _crc(index, 0, body) != crc:
                    raise CorruptStreamError(f"stream is corrupted (CRC mismatch in record {index})")
                if f.read(1):
                    raise CorruptStreamError("stream is corrupted (data after the end marker)")
                self.num_bytes += 8 + len(body)
                if v2:
                    self._finish_v2(*_LENGTHS.unpack(body), seg_total, open_segment)
                self.finished = True
                return
            payload = _read_exact(f, length, f"chunk {index}")
            (crc,) = _U32.unpack(_read_exact(f, 4, f"checksum of chunk {index}"))
            if _chunk_crc(index, payload) != crc:
                raise CorruptStreamError(f"stream is corrupted (CRC mismatch in chunk {index})")
            self.num_bytes += length + CHUNK_OVERHEAD_BYTES
            self.num_chunks += 1
            self.payload_bytes += length
            open_segment = True
            index += 1
            yield payload

    def _finish_v2(self, num_samples: int, codec_num_samples: int, seg_total: int, open_segment: bool) -> None:
        h = self.header
        if h.length_at_end:
            if num_samples == 0 or codec_num_samples == 0:
                raise CorruptStreamError("stream is corrupted (end marker gives no length)")
            self.header = dataclasses.replace(h, num_samples=num_samples, codec_num_samples=codec_num_samples)
        elif (num_samples, codec_num_samples) != (h.num_samples, h.codec_num_samples):
            raise CorruptStreamError("stream is inconsistent (end marker and header disagree on the length)")
        if h.segmented and (open_segment or seg_total != codec_num_samples):
            raise CorruptStreamError("stream is inconsistent (segments do not add up to the stream's length)")


class StreamWriter:
    """Writes a stream record by record to a binary file object: the header on construction,
    then :meth:`chunk` and (segmented version-2 streams) :meth:`segment_end`, then
    :meth:`finish` with the lengths (checked against a version-1 or fixed-length header)."""

    def __init__(self, f: BinaryIO, header: StreamHeader):
        self._f = f
        self.header = header
        self._index = 0
        self.num_bytes = f.write(header.to_bytes())
        self.num_chunks = 0
        self.payload_bytes = 0

    def chunk(self, payload: bytes) -> None:
        if not payload:
            raise ValueError("empty chunks are reserved for the end marker")
        if len(payload) > MAX_CHUNK_BYTES:
            raise ValueError("chunk too large")
        self.num_bytes += self._f.write(_U32.pack(len(payload)) + payload
                                        + _U32.pack(_chunk_crc(self._index, payload)))
        self._index += 1
        self.num_chunks += 1
        self.payload_bytes += len(payload)

    def segment_end(self, codec_samples: int) -> None:
        if not self.header.segmented:
            raise ValueError("segment marks need a version-2 header with FLAG_SEGMENTED")
        body = _U64.pack(int(codec_samples))
        self.num_bytes += self._f.write(_U32.pack(_MARK) + body + _U32.pack(_crc(self._index, _MARK, body)))
        self._index += 1

    def finish(self, num_samples: int | None = None, codec_num_samples: int | None = None) -> StreamHeader:
        """Write the end marker; returns the header with the final lengths."""
        h = self.header
        if h.length_at_end:
            if not num_samples or not codec_num_samples:
                raise ValueError("a stream with its length at the end needs both lengths")
            h = dataclasses.replace(h, num_samples=int(num_samples), codec_num_samples=int(codec_num_samples))
        elif num_samples is not None and (num_samples, codec_num_samples) != (h.num_samples, h.codec_num_samples):
            raise ValueError("the lengths differ from the header's")
        body = _LENGTHS.pack(h.num_samples, h.codec_num_samples) if h.format_version >= 2 else b""
        self.num_bytes += self._f.write(_U32.pack(0) + body + _U32.pack(_crc(self._index, 0, body)))
        self.header = h
        return h


def iter_chunks(f: BinaryIO, header: StreamHeader | None = None) -> Iterator[bytes]:
    """Yield verified chunk payloads of a version-1 stream (after :func:`read_header`) until the
    end marker; reject truncation and trailing bytes.  (:class:`StreamReader` reads both versions.)"""
    reader = StreamReader(f, header or StreamHeader("x", 0, 0, 1, 1, 1, 0, 0, 0))
    for rec in reader:
        if isinstance(rec, bytes):
            yield rec


def write_stream(f: BinaryIO, header: StreamHeader, chunks: Iterable[bytes]) -> int:
    """Write header, chunks and end marker to ``f``; returns the number of bytes written."""
    w = StreamWriter(f, header)
    for payload in chunks:
        w.chunk(payload)
    w.finish()
    return w.num_bytes


def framing(codec_id: str) -> Framing:
    """What a stream of codec ``codec_id`` adds to the payload: the header and end marker once,
    length and CRC per chunk (the api subtracts it from the file's budget)."""
    header = StreamHeader(codec_id, 0, 0, 1, 1, 1, 0, 0, 0).to_bytes()  # its size depends on the id only
    return Framing(stream_bytes=len(header) + END_MARKER_BYTES, chunk_bytes=CHUNK_OVERHEAD_BYTES)


@dataclass
class Stream:
    """A fully read and verified stream.  ``segments``: for segmented streams, per segment
    ``(number of chunks, codec samples)``; empty otherwise."""

    header: StreamHeader
    chunks: list[bytes]
    num_bytes: int
    segments: list[tuple[int, int]] = field(default_factory=list)

    @property
    def measured_kbps(self) -> float:
        """Bitrate measured from the total file size (header and framing included)."""
        return 8 * self.num_bytes / self.header.duration / 1000


def pack(header: StreamHeader, chunks: Iterable[bytes]) -> bytes:
    """Serialise an unsegmented stream of known length to bytes."""
    buf = io.BytesIO()
    write_stream(buf, header, chunks)
    return buf.getvalue()


def unpack(data: bytes) -> Stream:
    """Parse and verify a whole stream held in memory (version 1 or 2)."""
    reader = StreamReader(io.BytesIO(data))
    chunks: list[bytes] = []
    segments: list[tuple[int, int]] = []
    first = 0
    for rec in reader:
        if isinstance(rec, SegmentEnd):
            segments.append((len(chunks) - first, rec.codec_samples))
            first = len(chunks)
        else:
            chunks.append(rec)
    return Stream(reader.header, chunks, len(data), segments)
