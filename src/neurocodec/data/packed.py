"""Training audio packed into one small file, and random crops of it (data layer).

A machine that trains but cannot read the corpus (the lent GPU machine has neither soundfile nor
soxr, and takes 64 MiB of files along) gets the audio as one *pack*: :func:`write_pack` reads the
files of some splits and sources of a manifest, mixes them to mono at one sample rate, stores
them as 16-bit integers and compresses them losslessly; :func:`read_pack` needs only NumPy and
the standard library (``lzma``, or the ``xz`` program where Python lacks it).

Coding (lossless): the int16 samples of all files of a split, concatenated, become first
differences ``d[n] = x[n] - x[n-1]`` (mod 2^16), whose low and high bytes are stored as two
planes (all low bytes, then all high bytes); an uncompressed ``.npz`` of these planes, the file
offsets and sources and a JSON header is then xz-compressed.  The train and valid speech of the
16 kHz corpus (812 s) packs into 16.2 MB, against 26.0 MB of raw int16 and 15.5 MB of the
corpus's own FLAC files (``scripts/gpu_pack_data.py`` prints all three).

:class:`PackedSegments` is a map-style dataset of ``(1, segment_samples)`` float32 crops with
the crop rule of :class:`neurocodec.data.dataset.SegmentDataset` (a file drawn with probability
proportional to its length, a uniformly random start, zero padding at the end of a short file;
crop ``i`` of epoch ``e`` depends on ``(seed, e, i)`` alone).  ``to_device("cuda")`` moves the
whole split to the GPU once, after which a crop is a view of it and a batch costs one stack.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from ..errors import UserError

FORMAT = "neurocodec-audio-pack"
VERSION = 1
#: file name ending that marks a pack (``neurocodec train --data PACK`` reads it instead of a manifest)
SUFFIX = ".ncpack"


class PackError(UserError):
    """A pack is missing, unreadable, or lacks the split or sources asked for."""


@dataclass
class PackedSplit:
    """The audio of one split: int16 samples of every file, concatenated."""

    audio: np.ndarray  # int16 (N,)
    offsets: np.ndarray  # int64 (files + 1,): file k is audio[offsets[k]:offsets[k + 1]]
    sources: list[str]  # per file

    @property
    def num_files(self) -> int:
        return len(self.sources)

    def seconds(self, sample_rate: int) -> float:
        return float(self.audio.size) / sample_rate

    def select(self, sources: Sequence[str] | None) -> "PackedSplit":
        """Only the files of ``sources`` (all when None or empty)."""
        if not sources:
            return self
        keep = [k for k, s in enumerate(self.sources) if s in set(sources)]
        parts = [self.audio[self.offsets[k]:self.offsets[k + 1]] for k in keep]
        lengths = np.array([p.size for p in parts], dtype=np.int64)
        return PackedSplit(np.concatenate(parts) if parts else np.zeros(0, np.int16),
                           np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
                           [self.sources[k] for k in keep])


@dataclass
class Pack:
    """A read pack: its header (sample rate, source manifest and its SHA-256, ...) and splits."""

    header: dict[str, Any]
    splits: dict[str, PackedSplit] = field(default_factory=dict)

    @property
    def sample_rate(self) -> int:
        return int(self.header["sample_rate"])


def is_pack(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a pack (by its ending, :data:`SUFFIX`)."""
    return str(path).endswith(SUFFIX)


# -- coding ----------------------------------------------------------------------------------

def _to_planes(x: np.ndarray) -> np.ndarray:
    d = np.diff(x.astype(np.int32), prepend=0).astype(np.int16).view(np.uint16)
    return np.concatenate([(d & 0xFF).astype(np.uint8), (d >> 8).astype(np.uint8)])


def _from_planes(planes: np.ndarray) -> np.ndarray:
    n = planes.size // 2
    d = planes[:n].astype(np.uint16) | (planes[n:].astype(np.uint16) << 8)
    return np.cumsum(d, dtype=np.uint16).view(np.int16)  # wraps mod 2^16 like the differences


def _xz_compress(data: bytes) -> bytes:
    import lzma

    return lzma.compress(data, format=lzma.FORMAT_XZ, preset=6)


def _xz_decompress(data: bytes, where: Path) -> bytes:
    try:
        import lzma
    except ImportError:  # a Python built without _lzma: the xz program reads the same stream
        exe = shutil.which("xz")
        if exe is None:
            raise PackError(f"cannot read {where}: this Python has no lzma module and there is no 'xz' program")
        return subprocess.run([exe, "-dc"], input=data, capture_output=True, check=True).stdout
    try:
        return lzma.decompress(data, format=lzma.FORMAT_XZ)
    except lzma.LZMAError as e:
        raise PackError(f"{where} is not a readable pack: {e}") from None


def encode_pack(header: dict[str, Any], splits: dict[str, PackedSplit]) -> bytes:
    """The bytes of a pack file (see the module docstring)."""
    arrays: dict[str, np.ndarray] = {}
    for name, sp in splits.items():
        arrays[f"{name}.planes"] = _to_planes(sp.audio)
        arrays[f"{name}.offsets"] = np.asarray(sp.offsets, dtype=np.int64)
        arrays[f"{name}.sources"] = np.frombuffer(json.dumps(sp.sources).encode(), dtype=np.uint8)
    head = {"format": FORMAT, "version": VERSION, **header, "splits": sorted(splits)}
    arrays["header"] = np.frombuffer(json.dumps(head, sort_keys=True).encode(), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return _xz_compress(buf.getvalue())


def decode_pack(data: bytes, where: Path = Path("<pack>")) -> Pack:
    """Inverse of :func:`encode_pack`."""
    raw = _xz_decompress(data, where)
    try:
        z = np.load(io.BytesIO(raw), allow_pickle=False)
        header = json.loads(bytes(z["header"]).decode())
    except Exception as e:
        raise PackError(f"{where} is not a readable pack: {type(e).__name__}: {e}") from None
    if header.get("format") != FORMAT:
        raise PackError(f"{where} is not a neurocodec audio pack")
    if int(header.get("version", 0)) > VERSION:
        raise PackError(f"{where} was written by a newer neurocodec (pack version {header['version']})")
    splits = {}
    for name in header["splits"]:
        splits[name] = PackedSplit(_from_planes(z[f"{name}.planes"]), z[f"{name}.offsets"].astype(np.int64),
                                   json.loads(bytes(z[f"{name}.sources"]).decode()))
    return Pack(header, splits)


@lru_cache(maxsize=2)
def _read_cached(path: str, mtime_ns: int, size: int) -> Pack:
    return decode_pack(Path(path).read_bytes(), Path(path))


def read_pack(path: str | os.PathLike) -> Pack:
    """Read (and cache, per process) the pack at ``path``."""
    p = Path(path)
    if not p.is_file():
        raise PackError(f"audio pack not found: {p}")
    st = p.stat()
    return _read_cached(str(p.resolve()), st.st_mtime_ns, st.st_size)


def write_pack(manifest: str | os.PathLike, out: str | os.PathLike, *, splits: Iterable[str] = ("train", "valid"),
               sources: Sequence[str] | None = None, sample_rate: int = 16000,
               max_seconds: dict[str, float] | None = None, progress=None) -> dict[str, Any]:
    """Pack the files of ``splits`` (and ``sources``; all when None) of ``manifest`` into ``out``
    (mono, ``sample_rate``, int16), at most ``max_seconds[split]`` seconds of each split (whole
    files, manifest order).  Returns the header plus the file size (``bytes``)."""
    from ..audio import read_audio, resample
    from .manifest import Manifest

    out = Path(out)
    if not is_pack(out):
        raise PackError(f"a pack's name must end in {SUFFIX}: {out}")
    m = Manifest.load(manifest)
    packed: dict[str, PackedSplit] = {}
    stats: dict[str, dict[str, Any]] = {}
    for split in splits:
        sub = m.filter(split=split, source=list(sources) if sources else None)
        limit = (max_seconds or {}).get(split, math.inf)
        parts, srcs, total, source_bytes = [], [], 0, 0
        for rec in sub.records:
            if total >= limit * sample_rate:
                break
            x, sr = read_audio(m.abspath(rec))
            source_bytes += os.path.getsize(m.abspath(rec))
            y = resample(x.mean(axis=0, keepdims=True), sr, sample_rate)[0]
            parts.append(np.clip(np.round(y * 32768.0), -32768, 32767).astype(np.int16))
            srcs.append(rec.source)
            total += parts[-1].size
            if progress:
                progress(f"{split}: {total / sample_rate:.0f} s")
        if not parts:
            raise PackError(f"{manifest} has no audio in split '{split}'" + (f" from {', '.join(sources)}" if sources else ""))
        lengths = np.array([p.size for p in parts], dtype=np.int64)
        packed[split] = PackedSplit(np.concatenate(parts), np.concatenate([[0], np.cumsum(lengths)]), srcs)
        stats[split] = {"files": len(parts), "seconds": round(total / sample_rate, 3),
                        "int16_bytes": 2 * total, "source_file_bytes": source_bytes,
                        "seconds_by_source": {s: round(sum(int(n) for n, t in zip(lengths, srcs) if t == s) / sample_rate, 3)
                                              for s in sorted(set(srcs))}}
    mpath = Path(manifest)
    header = {"sample_rate": int(sample_rate), "manifest": str(mpath.resolve()),
              "manifest_sha256": hashlib.sha256(mpath.read_bytes()).hexdigest(),
              "sources": list(sources) if sources else None, "stats": stats}
    data = encode_pack(header, packed)
    from ..audio import atomic_write_bytes

    atomic_write_bytes(out, data)
    return {**header, "bytes": len(data)}


# -- the dataset -----------------------------------------------------------------------------

class PackedSegments:
    """Fixed-length mono crops of one split of a pack (see the module docstring).

    ``sources`` keeps only those files; ``sample_rate`` other than the pack's resamples every
    file once, at load, with ``scipy.signal.resample_poly``."""

    def __init__(self, pack: Pack | str | os.PathLike, split: str = "train", segment_samples: int = 16000,
                 sample_rate: int | None = None, seed: int = 0, sources: Sequence[str] | None = None,
                 length: int | None = None):
        pk = pack if isinstance(pack, Pack) else read_pack(pack)
        if split not in pk.splits:
            raise PackError(f"the pack has no split '{split}' (it has {', '.join(sorted(pk.splits))})")
        sp = pk.splits[split].select(sources)
        if sp.num_files == 0 or sp.audio.size == 0:
            raise PackError(f"the pack has no audio in split '{split}'" + (f" from {', '.join(sources)}" if sources else ""))
        if int(segment_samples) <= 0:
            raise PackError(f"segment_samples must be positive, not {segment_samples}")
        self.sample_rate = int(sample_rate or pk.sample_rate)
        files = [sp.audio[sp.offsets[k]:sp.offsets[k + 1]] for k in range(sp.num_files)]
        files = [f for f in files if f.size]
        if self.sample_rate != pk.sample_rate:
            from scipy.signal import resample_poly

            g = math.gcd(self.sample_rate, pk.sample_rate)
            files = [np.clip(np.round(resample_poly(f.astype(np.float64), self.sample_rate // g, pk.sample_rate // g)),
                             -32768, 32767).astype(np.int16) for f in files]
        lengths = np.array([f.size for f in files], dtype=np.int64)
        self._audio = np.concatenate(files)
        self._starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        self._lengths = lengths
        self._cum = np.cumsum(lengths / lengths.sum())
        self._cum[-1] = 1.0
        self._device_audio = None  # float32 torch tensor once to_device() ran
        self.sources = list(sources) if sources else None
        self.segment_samples = int(segment_samples)
        self.seed = int(seed)
        self.epoch = 0
        self.length = int(length) if length is not None else max(1, math.ceil(self._audio.size / self.segment_samples))

    def __len__(self) -> int:
        return self.length

    @property
    def seconds(self) -> float:
        return float(self._audio.size) / self.sample_rate

    def set_epoch(self, epoch: int) -> None:
        """Draw a different set of crops (crop i of epoch e is fixed by seed, e, i)."""
        self.epoch = int(epoch)

    def to_device(self, device) -> None:
        """Hold the split on ``device`` as float32 (a CUDA device: crops become views of it)."""
        import torch

        device = torch.device(device)
        if device.type == "cpu":
            self._device_audio = None
            return
        self._device_audio = (torch.from_numpy(self._audio).to(device).float() / 32768.0)

    def span(self, index: int) -> tuple[int, int]:
        """``(start, valid)``: where crop ``index`` starts in the concatenated split and how many of
        its samples lie inside its file (the rest is zero padding)."""
        if not 0 <= index < self.length:
            raise IndexError(f"crop index {index} out of range 0..{self.length - 1}")
        rng = np.random.default_rng([self.seed, self.epoch, int(index)])
        k = int(np.searchsorted(self._cum, rng.random(), side="right").clip(0, self._lengths.size - 1))
        n, T = int(self._lengths[k]), self.segment_samples
        off = int(rng.integers(0, n - T + 1)) if n > T else 0
        return int(self._starts[k]) + off, min(T, n - off)

    def __getitem__(self, index: int):
        import torch

        start, valid = self.span(int(index))
        T = self.segment_samples
        if self._device_audio is not None:
            x = self._device_audio[start:start + valid]
            if valid < T:
                x = torch.nn.functional.pad(x, (0, T - valid))
            return x[None]
        x = np.zeros((1, T), dtype=np.float32)
        x[0, :valid] = self._audio[start:start + valid].astype(np.float32) / 32768.0
        return torch.from_numpy(x)
