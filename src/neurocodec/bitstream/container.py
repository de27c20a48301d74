"""The ``.ncdc`` container: a versioned, checksummed wrapper around a codec's payload chunks.

Layout (all integers big-endian; docs/bitstream.md describes it byte by byte)::

    header  := magic "NCDC" | u8 format_version | u8 codec_id_len | codec_id (ASCII)
               | u16 codec_version | u32 config_hash | u32 sample_rate | u32 codec_sample_rate
               | u8 channels | u64 num_samples | u64 codec_num_samples | u32 bitrate_bps
               | u16 flags | u32 crc32(all preceding header bytes)
    chunk   := u32 length | payload[length] | u32 crc32(u32 index | u32 length | payload)
    stream  := header chunk* end
    end     := u32 0 | u32 crc32(u32 index | u32 0)

Chunks can be written as the encoder produces them and read one at a time, so long files
stream in both directions.  The chunk index inside each CRC detects dropped, duplicated or
reordered chunks; the end marker detects truncation at a chunk boundary; trailing bytes
after the end marker are rejected.  Nothing in the format is pickled or free-form JSON.
"""

from __future__ import annotations

import io
import re
import struct
import zlib
from dataclasses import dataclass
from typing import BinaryIO, Iterable, Iterator

from ..errors import CorruptStreamError, NotAStreamError, TruncatedStreamError, UnsupportedVersionError

MAGIC = b"NCDC"
FORMAT_VERSION = 1
MAX_CHUNK_BYTES = 1 << 26  # 64 MiB: larger lengths can only come from corruption
_CODEC_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_.\-]{0,63}$")

_FIXED_AFTER_ID = struct.Struct(">HIIIBQQIH")  # codec_version .. flags
_U32 = struct.Struct(">I")
_CHUNK_HEAD = struct.Struct(">II")  # index, length (what the chunk CRC covers before payload)

#: bytes added to the payload per chunk (length + CRC) and by the end marker
CHUNK_OVERHEAD_BYTES = 8
END_MARKER_BYTES = 8


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
    """Everything the header of a ``.ncdc`` stream records."""

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
    format_version: int = FORMAT_VERSION

    @property
    def duration(self) -> float:
        """Duration in seconds of the original signal."""
        return self.num_samples / self.sample_rate

    def validate(self) -> None:
        if not _CODEC_ID_RE.match(self.codec_id):
            raise ValueError(f"invalid codec id {self.codec_id!r}")
        if not 1 <= self.channels <= 255:
            raise ValueError("channels must be 1..255")
        if self.sample_rate <= 0 or self.codec_sample_rate <= 0:
            raise ValueError("sample rates must be positive")

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
    if version != FORMAT_VERSION:
        # The CRC cannot be checked without knowing the layout of an unknown version.
        raise UnsupportedVersionError(
            f"stream format version {version} is not supported (this neurocodec reads version {FORMAT_VERSION})"
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


def _chunk_crc(index: int, payload: bytes) -> int:
    return zlib.crc32(payload, zlib.crc32(_CHUNK_HEAD.pack(index, len(payload)))) & 0xFFFFFFFF


def iter_chunks(f: BinaryIO) -> Iterator[bytes]:
    """Yield verified chunk payloads until the end marker; reject truncation and trailing bytes."""
    index = 0
    while True:
        raw_len = f.read(4)
        if len(raw_len) != 4:
            raise TruncatedStreamError(f"stream is truncated (missing chunk {index} or end marker)")
        (length,) = _U32.unpack(raw_len)
        if length > MAX_CHUNK_BYTES:
            raise CorruptStreamError(f"stream is corrupted (chunk {index} claims {length} bytes)")
        payload = _read_exact(f, length, f"chunk {index}")
        (crc,) = _U32.unpack(_read_exact(f, 4, f"checksum of chunk {index}"))
        if _chunk_crc(index, payload) != crc:
            raise CorruptStreamError(f"stream is corrupted (CRC mismatch in chunk {index})")
        if length == 0:
            if f.read(1):
                raise CorruptStreamError("stream is corrupted (data after the end marker)")
            return
        yield payload
        index += 1


def write_stream(f: BinaryIO, header: StreamHeader, chunks: Iterable[bytes]) -> int:
    """Write header, chunks and end marker to ``f``; returns the number of bytes written."""
    n = f.write(header.to_bytes())
    index = 0
    for payload in chunks:
        if not payload:
            raise ValueError("empty chunks are reserved for the end marker")
        if len(payload) > MAX_CHUNK_BYTES:
            raise ValueError("chunk too large")
        n += f.write(_U32.pack(len(payload)) + payload + _U32.pack(_chunk_crc(index, payload)))
        index += 1
    n += f.write(_U32.pack(0) + _U32.pack(_chunk_crc(index, b"")))
    return n


def framing(codec_id: str) -> Framing:
    """What a stream of codec ``codec_id`` adds to the payload: the header and end marker once,
    length and CRC per chunk (the api subtracts it from the file's budget)."""
    header = StreamHeader(codec_id, 0, 0, 1, 1, 1, 0, 0, 0).to_bytes()  # its size depends on the id only
    return Framing(stream_bytes=len(header) + END_MARKER_BYTES, chunk_bytes=CHUNK_OVERHEAD_BYTES)


@dataclass
class Stream:
    """A fully read and verified stream."""

    header: StreamHeader
    chunks: list[bytes]
    num_bytes: int

    @property
    def measured_kbps(self) -> float:
        """Bitrate measured from the total file size (header and framing included)."""
        return 8 * self.num_bytes / self.header.duration / 1000


def pack(header: StreamHeader, chunks: Iterable[bytes]) -> bytes:
    """Serialise a stream to bytes."""
    buf = io.BytesIO()
    write_stream(buf, header, chunks)
    return buf.getvalue()


def unpack(data: bytes) -> Stream:
    """Parse and verify a whole stream held in memory."""
    f = io.BytesIO(data)
    header = read_header(f)
    chunks = list(iter_chunks(f))
    return Stream(header, chunks, len(data))
