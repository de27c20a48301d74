"""Audio file I/O, validation and resampling.

Audio inside neurocodec is a float32 numpy array shaped ``(channels, samples)``.
Files are read with soundfile (wav, flac, ogg, mp3 where libsndfile supports it) and,
failing that, decoded through ffmpeg.  Resampling uses soxr (VHQ).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import soxr

from .errors import AudioError, MissingToolError


def as_array(wav: Any) -> np.ndarray:
    """Convert numpy arrays or torch tensors to a float32 ``(channels, samples)`` array.

    1-D input is treated as mono.  2-D input is taken as ``(channels, samples)`` when the
    first axis is the shorter one (at most 16 channels), else as ``(samples, channels)``.
    """
    if hasattr(wav, "detach"):  # torch tensor without importing torch here
        wav = wav.detach().cpu().numpy()
    arr = np.asarray(wav)
    if arr.dtype.kind not in "fiu":
        raise AudioError(f"audio must be numeric, got dtype {arr.dtype}")
    if arr.dtype.kind in "iu":
        info = np.iinfo(arr.dtype)
        arr = arr.astype(np.float64) / max(abs(info.min), info.max)
    if arr.ndim == 1:
        arr = arr[None, :]
    elif arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 2:
        raise AudioError(f"audio must be 1-D or 2-D, got shape {tuple(arr.shape)}")
    if arr.shape[0] > arr.shape[1] and arr.shape[1] <= 16:
        arr = arr.T
    return np.ascontiguousarray(arr, dtype=np.float32)


def validate(audio: np.ndarray, what: str = "audio") -> np.ndarray:
    """Reject empty or non-finite audio with an :class:`AudioError`."""
    if audio.shape[-1] == 0 or audio.size == 0:
        raise AudioError(f"{what} is empty (0 samples)")
    if audio.shape[0] > 255:
        raise AudioError(f"{what} has {audio.shape[0]} channels; at most 255 are supported")
    if not np.all(np.isfinite(audio)):
        raise AudioError(f"{what} contains NaN or Inf samples")
    return audio


def resample(audio: np.ndarray, sr_in: int, sr_out: int, dtype=np.float32) -> np.ndarray:
    """Resample ``(channels, samples)`` audio with soxr (very high quality, computed in float64)."""
    if sr_in == sr_out:
        return audio
    out = soxr.resample(audio.T.astype(np.float64), sr_in, sr_out, quality="VHQ")
    out = np.asarray(out, dtype=dtype)
    if out.ndim == 1:
        out = out[:, None]
    return np.ascontiguousarray(out.T)


def fit_length(audio: np.ndarray, n: int) -> np.ndarray:
    """Trim or zero-pad the last axis to exactly ``n`` samples."""
    if audio.shape[-1] >= n:
        return audio[..., :n]
    pad = np.zeros(audio.shape[:-1] + (n - audio.shape[-1],), dtype=audio.dtype)
    return np.concatenate([audio, pad], axis=-1)


def _read_ffmpeg(path: Path) -> tuple[np.ndarray, int]:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise MissingToolError(
            f"cannot read {path}: soundfile does not support it and ffmpeg is not installed "
            "(apt-get install ffmpeg)"
        )
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "decoded.wav"
        proc = subprocess.run(
            [ffmpeg, "-nostdin", "-v", "error", "-i", str(path), "-c:a", "pcm_f32le", str(out)],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0 or not out.exists():
            raise AudioError(f"cannot read audio file {path}: not a supported audio format")
        data, sr = sf.read(str(out), dtype="float32", always_2d=True)
    return data.T.copy(), int(sr)


def read_audio(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Read an audio file as float32 ``(channels, samples)`` and its sample rate."""
    path = Path(path)
    if not path.exists():
        raise AudioError(f"input file not found: {path}")
    if path.is_dir():
        raise AudioError(f"input is a directory, not an audio file: {path}")
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
        audio = np.ascontiguousarray(data.T)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError):
        audio, sr = _read_ffmpeg(path)
    return validate(audio, f"audio file {path}"), int(sr)


def new_file_mode() -> int:
    """Mode a new file gets under the current umask (mkstemp's files are 0600)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` (a file the library manages: run folders, manifests; parent
    folders are created) through a temporary file and an atomic rename; the file gets the
    umask's mode.  User-named outputs go through :func:`neurocodec.fileio.open_output`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            os.fchmod(f.fileno(), new_file_mode())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_audio(path: str | os.PathLike, audio: np.ndarray, sample_rate: int, subtype: str | None = None) -> None:
    """Write ``(channels, samples)`` audio atomically; format follows the file extension."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = path.suffix.lstrip(".").upper() or "WAV"
    if fmt not in sf.available_formats():
        raise AudioError(f"cannot write audio format '{path.suffix}' (use .wav or .flac)")
    if subtype is None:
        subtype = "PCM_16" if fmt in ("WAV", "FLAC") else None
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        clipped = np.clip(audio, -1.0, 1.0) if subtype and subtype.startswith("PCM") else audio
        sf.write(tmp, clipped.T, sample_rate, format=fmt, subtype=subtype)
        os.chmod(tmp, new_file_mode())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
