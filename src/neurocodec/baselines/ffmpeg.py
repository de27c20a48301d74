"""Coding mono float32 PCM through the ``ffmpeg`` program (for the MP3 and AAC baselines).

PCM goes to ffmpeg's standard input as raw little-endian float32 (``-f f32le``) and the coded
stream comes back on standard output in the muxer format given (``mp3``: bare MPEG audio
frames; ``adts``: AAC frames each with its ADTS header), and the reverse for decoding.  The
``bitexact`` flags keep the output free of version strings, so equal input gives equal bytes.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..errors import CorruptStreamError
from .tools import ToolFailedError, find_program, run_program

PACKAGE = "ffmpeg"
_COMMON = ["-hide_banner", "-loglevel", "error", "-threads", "1"]


def ffmpeg_path() -> str:
    """Path of ffmpeg, or :class:`MissingToolError` naming the Debian package."""
    return find_program("ffmpeg", PACKAGE)


@lru_cache(maxsize=None)
def ffmpeg_has_encoder(name: str) -> bool:
    """Whether this ffmpeg build lists the audio encoder ``name`` (e.g. ``libmp3lame``)."""
    out = run_program([ffmpeg_path(), "-hide_banner", "-encoders"]).decode(errors="replace")
    return any(line.split()[1:2] == [name] for line in out.splitlines() if line.startswith(" A"))


def encode(pcm: np.ndarray, sample_rate: int, codec_args: list[str], fmt: str) -> bytes:
    """Encode mono float32 ``pcm`` with ffmpeg ``codec_args`` into the muxer format ``fmt``."""
    data = np.ascontiguousarray(pcm, dtype="<f4").tobytes()
    args = [ffmpeg_path(), *_COMMON, "-f", "f32le", "-ar", str(sample_rate), "-ac", "1", "-i", "pipe:0",
            "-fflags", "+bitexact", "-flags:a", "+bitexact", *codec_args, "-f", fmt, "pipe:1"]
    out = run_program(args, data, error=ToolFailedError, what=f"ffmpeg ({fmt} encoder)")
    if not out:
        raise ToolFailedError(f"ffmpeg produced no {fmt} data")
    return out


def decode(payload: bytes, sample_rate: int, fmt: str) -> np.ndarray:
    """Decode a ``fmt`` stream with ffmpeg into mono float32 samples at ``sample_rate``."""
    args = [ffmpeg_path(), *_COMMON, "-f", fmt, "-i", "pipe:0", "-f", "f32le", "-ac", "1",
            "-ar", str(sample_rate), "pipe:1"]
    out = run_program(args, payload, error=CorruptStreamError, what=f"ffmpeg ({fmt} decoder)")
    return np.frombuffer(out, dtype="<f4").astype(np.float32)
