"""Where the commands read and write (api layer): ``-`` for stdin/stdout, files, pipes.

Outputs (:func:`open_output`) never destroy anything:

* ``-`` is standard output;
* a regular file (or a new name) is written to a temporary file in the same folder and renamed
  over the target only when the command succeeds, so a failed command leaves no half-written
  file and the old content survives; the new file gets the mode the umask gives a new file
  (an existing file keeps its mode);
* a symbolic link is followed: the link stays and its target is written as above;
* anything that is not a regular file (a FIFO, ``/dev/null``, a terminal, a character device)
  is opened and written through, never replaced;
* the input itself (also through a link), a missing folder, a folder (or a name ending in
  ``/``) and a path without write permission are errors (:class:`OutputError`, exit status 2),
  reported before anything is coded.

Audio comes from :func:`open_audio_source` (a file read block by block with soundfile, ffmpeg
for what libsndfile cannot read, WAV or raw PCM on stdin) and goes to :func:`open_audio_sink`
(soundfile on seekable outputs; a streamed WAV header or raw PCM on pipes).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import struct
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator

import numpy as np
import soundfile as sf

from .audio import new_file_mode
from .errors import AudioError, MissingToolError, OutputError, UserError

STDIO = "-"


def _same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_output(path: str | os.PathLike, inputs: tuple[str | os.PathLike, ...] = ()) -> None:
    """Raise :class:`OutputError` when ``path`` cannot be an output (see the module docstring)."""
    text = os.fspath(path)
    if text == STDIO:
        return
    if not text:
        raise OutputError("output path is empty")
    p = Path(text)
    if text.endswith(("/", os.sep)) or p.is_dir():
        raise OutputError(f"output is a directory: {text} (give a file name)")
    for inp in inputs:
        if os.fspath(inp) != STDIO and p.exists() and _same_file(p, inp):
            raise OutputError(f"output {text} is the input file; choose another output name")
    target = Path(os.path.realpath(p))
    if target.exists() and not target.is_file():
        if not os.access(target, os.W_OK):
            raise OutputError(f"cannot write {text}: permission denied")
        return  # FIFO, device: written through
    if not target.parent.is_dir():
        raise OutputError(f"output directory does not exist: {target.parent}")
    if target.exists() and not os.access(target, os.W_OK):
        raise OutputError(f"cannot write {text}: permission denied")
    if not os.access(target.parent, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write {text}: permission denied in {target.parent}")


@contextlib.contextmanager
def open_output(path: str | os.PathLike, inputs: tuple[str | os.PathLike, ...] = ()) -> Iterator[BinaryIO]:
    """A binary file to write the output ``path`` to (see the module docstring).  The file is
    complete (renamed into place, flushed) when the ``with`` block ends without an exception."""
    check_output(path, inputs)
    text = os.fspath(path)
    if text == STDIO:
        out = sys.stdout.buffer
        yield out
        out.flush()
        return
    target = Path(os.path.realpath(text))
    if target.exists() and not target.is_file():
        try:
            f = open(target, "wb")
        except OSError as e:
            raise OutputError(f"cannot write {text}: {e.strerror}") from None
        with f:
            yield f
        return
    mode = stat.S_IMODE(target.stat().st_mode) if target.exists() else new_file_mode()
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    except OSError as e:
        raise OutputError(f"cannot write {text}: {e.strerror}") from None
    try:
        with os.fdopen(fd, "w+b") as f:
            yield f
            f.flush()
            os.fchmod(f.fileno(), mode)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def open_input(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """A binary file to read ``path`` from (``-``: standard input)."""
    text = os.fspath(path)
    if text == STDIO:
        yield sys.stdin.buffer
        return
    p = Path(text)
    if not p.exists():
        raise UserError(f"input file not found: {p}")
    if p.is_dir():
        raise UserError(f"input is a directory: {p}")
    try:
        f = open(p, "rb")
    except OSError as e:
        raise UserError(f"cannot read {p}: {e.strerror}") from None
    with f:
        yield f


def atomic_write_bytes(path: str | os.PathLike, data: bytes, inputs: tuple[str | os.PathLike, ...] = ()) -> None:
    """Write ``data`` to an output path under the rules of :func:`open_output`."""
    with open_output(path, inputs) as f:
        f.write(data)


# -- audio in --------------------------------------------------------------------------------

RAW_FORMATS = {"s16le": "<i2", "s16be": ">i2", "s32le": "<i4", "f32le": "<f4"}


@dataclass(frozen=True)
class RawFormat:
    """How headerless PCM is laid out: sample format (``s16le``, ``s16be``, ``s32le``, ``f32le``),
    rate and interleaved channel count."""

    format: str = "s16le"
    sample_rate: int = 16000
    channels: int = 1

    def __post_init__(self) -> None:
        if self.format not in RAW_FORMATS:
            raise UserError(f"unknown raw format '{self.format}' (use {', '.join(RAW_FORMATS)})")
        if self.sample_rate <= 0 or not 1 <= self.channels <= 255:
            raise UserError("raw audio needs a positive rate and 1..255 channels")

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(RAW_FORMATS[self.format])

    def to_float(self, data: np.ndarray) -> np.ndarray:
        """Interleaved samples -> float32 ``(channels, n)`` in [-1, 1)."""
        x = data.reshape(-1, self.channels).T
        if self.dtype.kind == "i":
            return (x.astype(np.float32) / float(-np.iinfo(self.dtype).min)).astype(np.float32)
        return np.ascontiguousarray(x, dtype=np.float32)

    def from_float(self, audio: np.ndarray) -> bytes:
        if self.dtype.kind == "i":
            scale = float(-np.iinfo(self.dtype).min)
            q = np.clip(np.round(np.asarray(audio, np.float64) * scale), -scale, scale - 1)
            return q.T.astype(self.dtype).tobytes()
        return np.asarray(audio, dtype=self.dtype).T.tobytes()


class AudioSource:
    """Audio read block by block: ``sample_rate``, ``channels``, ``num_samples`` (None when a
    pipe does not tell) and :meth:`blocks` of float32 ``(channels, n)``."""

    sample_rate: int
    channels: int
    num_samples: int | None
    name: str

    def blocks(self, size: int) -> Iterator[np.ndarray]:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> None:
        pass


class _SoundFileSource(AudioSource):
    def __init__(self, sfile: sf.SoundFile, name: str, known_length: bool, cleanup: str | None = None):
        self._sf, self.name, self._cleanup = sfile, name, cleanup
        self.sample_rate, self.channels = int(sfile.samplerate), int(sfile.channels)
        self.num_samples = int(sfile.frames) if known_length else None
        if not 1 <= self.channels <= 255:
            raise AudioError(f"{name} has {self.channels} channels; 1 to 255 are supported")

    def blocks(self, size: int) -> Iterator[np.ndarray]:
        while True:
            try:
                data = self._sf.read(size, dtype="float32", always_2d=True)
            except (sf.LibsndfileError, RuntimeError) as e:
                raise AudioError(f"cannot read {self.name}: {e}") from None
            if not len(data):
                return
            yield np.ascontiguousarray(data.T)

    def close(self) -> None:
        self._sf.close()
        if self._cleanup:
            shutil.rmtree(self._cleanup, ignore_errors=True)


class _RawSource(AudioSource):
    def __init__(self, f: BinaryIO, fmt: RawFormat, name: str, num_bytes: int | None):
        self._f, self._fmt, self.name = f, fmt, name
        self.sample_rate, self.channels = fmt.sample_rate, fmt.channels
        frame = fmt.dtype.itemsize * fmt.channels
        self.num_samples = None if num_bytes is None else num_bytes // frame
        self._rest = b""

    def blocks(self, size: int) -> Iterator[np.ndarray]:
        frame = self._fmt.dtype.itemsize * self._fmt.channels
        while True:
            data = self._rest + self._f.read(size * frame)
            if len(data) < frame:
                if data:
                    raise AudioError(f"raw audio from {self.name} ends inside a sample frame "
                                     f"({len(data)} of {frame} bytes)")
                return
            n = len(data) // frame * frame
            self._rest = data[n:]
            yield self._fmt.to_float(np.frombuffer(data[:n], dtype=self._fmt.dtype))

    def close(self) -> None:
        if self._f is not sys.stdin.buffer:
            self._f.close()


def _ffmpeg_to_wav(path: Path) -> tuple[str, str]:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise MissingToolError(
            f"cannot read {path}: soundfile does not support it and ffmpeg is not installed "
            "(apt-get install ffmpeg)"
        )
    tmp = tempfile.mkdtemp(prefix="neurocodec-")
    out = os.path.join(tmp, "decoded.wav")
    proc = subprocess.run([ffmpeg, "-nostdin", "-v", "error", "-i", str(path), "-c:a", "pcm_f32le", out],
                          capture_output=True, text=True)
    if proc.returncode != 0 or not os.path.exists(out):
        shutil.rmtree(tmp, ignore_errors=True)
        raise AudioError(f"cannot read audio file {path}: not a supported audio format")
    return out, tmp


def open_audio_source(path: str | os.PathLike, raw: RawFormat | None = None) -> AudioSource:
    """Open ``path`` (``-``: stdin) for block-wise reading.  Files: anything libsndfile reads,
    else decoded by ffmpeg to a temporary WAV; stdin: WAV (any header length; read to EOF) or,
    with ``raw``, headerless PCM."""
    text = os.fspath(path)
    if text == STDIO:
        if raw is not None:
            return _RawSource(sys.stdin.buffer, raw, "stdin", None)
        try:
            sfile = sf.SoundFile(sys.stdin.fileno(), mode="r", closefd=False)
        except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
            raise AudioError(f"cannot read audio from stdin: {e} (stdin takes WAV; for headerless PCM "
                             "give --raw-format/--raw-rate/--raw-channels)") from None
        return _SoundFileSource(sfile, "stdin", known_length=False)
    p = Path(text)
    if not p.exists():
        raise AudioError(f"input file not found: {p}")
    if p.is_dir():
        raise AudioError(f"input is a directory, not an audio file: {p}")
    if raw is not None:
        f = open(p, "rb")
        size = os.fstat(f.fileno()).st_size if p.is_file() else None
        return _RawSource(f, raw, str(p), size)
    if not p.is_file():  # a FIFO or device: read it like stdin, to its end
        try:
            return _SoundFileSource(sf.SoundFile(str(p)), str(p), known_length=False)
        except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
            raise AudioError(f"cannot read audio from {p}: {e}") from None
    try:
        return _SoundFileSource(sf.SoundFile(str(p)), str(p), known_length=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError):
        wav, tmp = _ffmpeg_to_wav(p)
        return _SoundFileSource(sf.SoundFile(wav), str(p), known_length=True, cleanup=tmp)


# -- audio out -------------------------------------------------------------------------------

class AudioSink:
    """Audio written block by block (float32 ``(channels, n)``); :meth:`close` completes it."""

    def write(self, block: np.ndarray) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> None:
        pass

    def abandon(self) -> None:
        """Stop writing after an error (the output is discarded by :func:`open_output`)."""
        with contextlib.suppress(Exception):
            self.close()


class _SoundFileSink(AudioSink):
    def __init__(self, f: BinaryIO, sample_rate: int, channels: int, fmt: str, subtype: str | None):
        self._clip = bool(subtype and subtype.startswith("PCM"))
        self._sf = sf.SoundFile(f, mode="w", samplerate=sample_rate, channels=channels, format=fmt, subtype=subtype)

    def write(self, block: np.ndarray) -> None:
        x = np.clip(block, -1.0, 1.0) if self._clip else block
        self._sf.write(np.ascontiguousarray(x.T))

    def close(self) -> None:
        self._sf.close()


class _StreamedWavSink(AudioSink):
    """16-bit WAV on a pipe: the RIFF and data sizes are 0xFFFFFFFF ("until the end"), as
    streaming tools write them; readers take the data to the end of the stream."""

    def __init__(self, f: BinaryIO, sample_rate: int, channels: int):
        self._f = f
        self._raw = RawFormat("s16le", sample_rate, channels)
        block_align = 2 * channels
        f.write(b"RIFF" + struct.pack("<I", 0xFFFFFFFF) + b"WAVE"
                + b"fmt " + struct.pack("<IHHIIHH", 16, 1, channels, sample_rate, sample_rate * block_align,
                                        block_align, 16)
                + b"data" + struct.pack("<I", 0xFFFFFFFF))

    def write(self, block: np.ndarray) -> None:
        self._f.write(self._raw.from_float(block))
        self._f.flush()


class _RawSink(AudioSink):
    def __init__(self, f: BinaryIO, fmt: RawFormat):
        self._f, self._fmt = f, fmt

    def write(self, block: np.ndarray) -> None:
        self._f.write(self._fmt.from_float(block))
        self._f.flush()


def _seekable(f: BinaryIO) -> bool:
    try:
        return f.seekable()
    except (AttributeError, OSError, ValueError):
        return False


def audio_format_for(path: str | os.PathLike) -> str:
    """The soundfile format an output name asks for (``WAV`` for ``-`` and names without one);
    an :class:`AudioError` for formats soundfile cannot write."""
    text = os.fspath(path)
    fmt = "WAV" if text == STDIO else (Path(text).suffix.lstrip(".").upper() or "WAV")
    if fmt not in sf.available_formats():
        raise AudioError(f"cannot write audio format '{Path(text).suffix}' (use .wav or .flac)")
    return fmt


def open_audio_sink(f: BinaryIO, path: str | os.PathLike, sample_rate: int, channels: int,
                    raw: RawFormat | None = None) -> AudioSink:
    """An :class:`AudioSink` on the open output ``f`` (named ``path``): raw PCM when ``raw`` is
    given, else the format of the name's extension (16-bit for WAV/FLAC); on a pipe or device
    only WAV (streamed header) or raw can be written."""
    if raw is not None:
        return _RawSink(f, RawFormat(raw.format, sample_rate, channels))
    fmt = audio_format_for(path)
    if not _seekable(f):
        if fmt != "WAV":
            raise AudioError(f"{fmt} cannot be written to a pipe or device; use WAV or --raw-format")
        return _StreamedWavSink(f, sample_rate, channels)
    subtype = "PCM_16" if fmt in ("WAV", "FLAC") else None
    return _SoundFileSink(f, sample_rate, channels, fmt, subtype)


# -- progress --------------------------------------------------------------------------------

class Progress:
    """A tqdm bar of audio seconds on stderr, shown only when stderr is a terminal, not
    ``quiet``, and the work lasts over ``delay`` seconds."""

    def __init__(self, total_seconds: float | None, desc: str, quiet: bool = False, delay: float = 2.0):
        self._bar = None
        if quiet or not sys.stderr.isatty():
            return
        from tqdm import tqdm

        self._bar = tqdm(total=total_seconds, desc=desc, unit="s", unit_scale=False, delay=delay,
                         file=sys.stderr, dynamic_ncols=True, leave=False,
                         bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s audio [{elapsed}<{remaining}]"
                         if total_seconds else "{desc}: {n:.0f} s audio [{elapsed}]")

    def update(self, seconds: float) -> None:
        if self._bar is not None:
            self._bar.update(seconds)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
