"""The ``.ncdc`` file format (see docs/bitstream.md)."""

from .container import (
    CHUNK_OVERHEAD_BYTES,
    FLAG_LENGTH_AT_END,
    FLAG_SEGMENTED,
    FORMAT_VERSION,
    MAGIC,
    SegmentEnd,
    Stream,
    StreamHeader,
    StreamReader,
    StreamWriter,
    framing,
    iter_chunks,
    pack,
    read_header,
    unpack,
    write_stream,
)

__all__ = [
    "CHUNK_OVERHEAD_BYTES", "FLAG_LENGTH_AT_END", "FLAG_SEGMENTED", "FORMAT_VERSION", "MAGIC", "SegmentEnd",
    "Stream", "StreamHeader", "StreamReader", "StreamWriter", "framing", "iter_chunks", "pack", "read_header",
    "unpack", "write_stream",
]
