"""The ``.ncdc`` file format (see docs/bitstream.md)."""

from .container import (
    CHUNK_OVERHEAD_BYTES,
    FORMAT_VERSION,
    MAGIC,
    Stream,
    StreamHeader,
    framing,
    iter_chunks,
    pack,
    read_header,
    unpack,
    write_stream,
)

__all__ = [
    "CHUNK_OVERHEAD_BYTES", "FORMAT_VERSION", "MAGIC", "Stream", "StreamHeader", "framing", "iter_chunks",
    "pack", "read_header", "unpack", "write_stream",
]
