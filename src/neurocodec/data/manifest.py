"""Corpus manifests: one JSON object per audio segment (JSON Lines).

A manifest lists the segments of a corpus with the columns every consumer needs
(``path`` relative to the manifest's folder, ``duration`` in seconds, ``sample_rate``,
``source``, ``speaker``, ``piece``, ``language``, ``split``) plus provenance (``origin``),
a transcript when one is known (``text``) and the bandwidth the audio really carries
(``bandwidth_hz``: a 16 kHz G.722 prompt upsampled to 48 kHz still only carries 7 kHz).  Both ``data build`` and
``data index`` write this format; :class:`neurocodec.data.dataset.SegmentDataset` reads it.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Iterable, Iterator

from ..audio import atomic_write_bytes
from ..errors import UserError

#: the splits every manifest uses
SPLITS = ("train", "valid", "test")
#: the values of ``source`` written by ``data build`` (``data index`` writes ``user``)
SOURCES = ("speech-real", "speech-tts", "music-real", "music-rendered", "mixture")


class ManifestError(UserError):
    """A manifest file is missing or malformed, or a filter matches nothing."""


@dataclass(frozen=True)
class SegmentRecord:
    """One audio segment of a corpus (a line of the manifest)."""

    path: str  # relative to the manifest's folder, '/'-separated
    duration: float  # seconds
    sample_rate: int
    source: str  # speech-real | speech-tts | music-real | music-rendered | mixture | user
    speaker: str = ""  # speaker id ('' for music)
    piece: str = ""  # piece / track id ('' for speech)
    language: str = ""  # ISO 639-1 code ('' for instrumental music)
    split: str = "train"
    origin: str = ""  # where the audio came from (file, engine settings, mixture recipe)
    bandwidth_hz: float = 0.0  # highest frequency the content can hold (0 = sample_rate / 2)
    text: str = ""  # transcript when known (TTS input, Asterisk prompt transcript)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, ensure_ascii=False)

    @classmethod
    def from_dict(cls, d: dict) -> "SegmentRecord":
        names = {f.name for f in fields(cls)}
        missing = {"path", "duration", "sample_rate", "source"} - set(d)
        if missing:
            raise ManifestError(f"manifest line lacks {', '.join(sorted(missing))}")
        return cls(**{k: v for k, v in d.items() if k in names})

    @property
    def group(self) -> str:
        """The identity that must not cross splits: speaker for speech, piece for music."""
        return self.speaker or self.piece


@dataclass(frozen=True)
class SplitSummary:
    """Hours per source and distinct speakers / pieces in one split."""

    split: str
    segments: int
    hours: float
    hours_by_source: dict[str, float]
    speakers: int
    pieces: int


@dataclass
class Manifest:
    """A list of :class:`SegmentRecord` whose paths are relative to ``root``."""

    records: list[SegmentRecord] = field(default_factory=list)
    root: Path = Path(".")

    # -- I/O ---------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | os.PathLike) -> "Manifest":
        """Read a JSON Lines manifest; paths resolve against the manifest's folder."""
        path = Path(path)
        if path.is_dir():
            path = path / "manifest.jsonl"
        if not path.is_file():
            raise ManifestError(f"manifest not found: {path}")
        records = []
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                line = line.strip()
                if not line:
                    continue
                try:
                    records.append(SegmentRecord.from_dict(json.loads(line)))
                except (json.JSONDecodeError, TypeError) as exc:
                    raise ManifestError(f"{path}:{lineno}: not a manifest line ({exc})") from None
        return cls(records, path.parent.resolve())

    def save(self, path: str | os.PathLike) -> Path:
        """Write the manifest atomically as JSON Lines (records in their current order)."""
        path = Path(path)
        text = "".join(r.to_json() + "\n" for r in self.records)
        atomic_write_bytes(path, text.encode("utf-8"))
        return path

    # -- access ------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[SegmentRecord]:
        return iter(self.records)

    def abspath(self, record: SegmentRecord) -> Path:
        """Absolute path of a record's audio file."""
        return self.root / record.path

    def filter(self, split: str | Iterable[str] | None = None,
               source: str | Iterable[str] | None = None) -> "Manifest":
        """Records of the given split(s) and source(s) (``None`` keeps all)."""
        splits = _as_set(split)
        sources = _as_set(source)
        if splits is not None and not splits <= set(SPLITS):
            raise ManifestError(f"unknown split {sorted(splits - set(SPLITS))} (use train, valid, test)")
        keep = [r for r in self.records
                if (splits is None or r.split in splits) and (sources is None or r.source in sources)]
        return Manifest(keep, self.root)

    @property
    def duration(self) -> float:
        """Total duration in seconds."""
        return float(sum(r.duration for r in self.records))

    def groups(self, split: str) -> set[str]:
        """Speaker and piece ids present in a split."""
        return {r.group for r in self.records if r.split == split and r.group}

    def leaks(self) -> dict[str, list[str]]:
        """Speaker / piece ids that occur in more than one split (empty when clean)."""
        seen: dict[str, set[str]] = defaultdict(set)
        for r in self.records:
            if r.speaker:
                seen["speaker:" + r.speaker].add(r.split)
            if r.piece:
                seen["piece:" + r.piece].add(r.split)
        return {k: sorted(v) for k, v in seen.items() if len(v) > 1}

    def summary(self) -> list[SplitSummary]:
        """Per-split composition: hours per source, number of speakers and pieces."""
        out = []
        for split in SPLITS:
            recs = [r for r in self.records if r.split == split]
            by_source: dict[str, float] = defaultdict(float)
            for r in recs:
                by_source[r.source] += r.duration / 3600.0
            out.append(SplitSummary(
                split=split,
                segments=len(recs),
                hours=sum(by_source.values()),
                hours_by_source=dict(sorted(by_source.items())),
                speakers=len({r.speaker for r in recs if r.speaker}),
                pieces=len({r.piece for r in recs if r.piece}),
            ))
        return out

    def describe(self) -> str:
        """A small text table of :meth:`summary`."""
        lines = []
        for s in self.summary():
            parts = ", ".join(f"{k} {v * 60:.1f} min" for k, v in s.hours_by_source.items())
            lines.append(f"{s.split:5s}: {s.segments:5d} segments, {s.hours * 60:6.1f} min "
                         f"({parts or 'empty'}); {s.speakers} speakers, {s.pieces} pieces")
        return "\n".join(lines)


def _as_set(v: str | Iterable[str] | None) -> set[str] | None:
    if v is None:
        return None
    if isinstance(v, str):
        return {v}
    return set(v)
