"""``index_folder``: a manifest for a user's own audio tree, split without speaker leakage.

Speaker ids are inferred from the layout (first rule that matches a file wins):

* LibriSpeech / LibriTTS - file ``<spk>-<chapter>-<utt>.flac`` (LibriTTS:
  ``<spk>_<chapter>_<par>_<sent>.wav``): speaker ``<spk>``, language en;
* VCTK - file ``p225_001.wav`` / ``p225_001_mic1.flac`` (also ``s5_...``): speaker ``p225``,
  language en;
* TIMIT - ``.../DR<n>/<SPKR>/<utt>.WAV`` with a speaker folder like ``FCJF0``: speaker
  ``<SPKR>`` (the folder name, unique in TIMIT), language en;
* anything else - the file's parent folder relative to the indexed root (files directly in
  the root are each their own group).

With ``split_by='file'`` every file is its own group instead (no speaker guarantee).
Groups are split by :func:`neurocodec.data.splits.assign_groups` salted with the seed.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import soundfile as sf

from ..errors import UserError
from .manifest import Manifest, SegmentRecord
from .splits import assign_groups, check_fractions

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".opus", ".aiff", ".aif")
SPLIT_MODES = ("speaker", "file")

_LIBRI = re.compile(r"^(\d+)-\d+-\d+$")  # LibriSpeech 103-1240-0000
_LIBRITTS = re.compile(r"^(\d+)_\d+_\d+_\d+$")  # LibriTTS 19_198_000000_000000
_VCTK = re.compile(r"^([ps]\d{1,3})_\d{3}(?:_mic\d)?$")
_TIMIT_SPK = re.compile(r"^[MF][A-Z]{3}\d$", re.IGNORECASE)
_TIMIT_DR = re.compile(r"^DR\d$", re.IGNORECASE)


class FolderIndexError(UserError):
    """The folder to index is missing, empty of audio, or an option is wrong."""


def infer_speaker(rel: Path) -> tuple[str, str, str]:
    """(speaker id, language, rule) for a file path relative to the indexed root."""
    stem = rel.stem
    parents = rel.parts[:-1]
    m = _LIBRI.match(stem) or _LIBRITTS.match(stem)
    if m:
        return f"libri:{m.group(1)}", "en", "librispeech"
    m = _VCTK.match(stem)
    if m:
        return f"vctk:{m.group(1)}", "en", "vctk"
    if len(parents) >= 2 and _TIMIT_SPK.match(parents[-1]) and _TIMIT_DR.match(parents[-2]):
        return f"timit:{parents[-1].upper()}", "en", "timit"
    if parents:
        return "dir:" + "/".join(parents), "", "folder"
    return "file:" + rel.as_posix(), "", "file"


def index_folder(directory: str | os.PathLike, out: str | os.PathLike | None = None, split_by: str = "speaker",
                 valid: float = 0.05, test: float = 0.05, seed: int = 0, progress: bool = False) -> Manifest:
    """Index every audio file under ``directory`` into a manifest and save it.

    ``out`` defaults to ``<directory>/manifest.jsonl``; record paths are relative to the
    manifest's folder.  Unreadable files are skipped (their number is printed when
    ``progress``).  Raises :class:`UserError` for a missing folder, no audio, or bad options.
    """
    root = Path(directory)
    if not root.is_dir():
        raise FolderIndexError(f"folder not found: {root}")
    if split_by not in SPLIT_MODES:
        raise FolderIndexError(f"--split-by must be one of {', '.join(SPLIT_MODES)}, not {split_by!r}")
    check_fractions(valid, test)
    out_path = Path(out) if out is not None else root / "manifest.jsonl"
    if out_path.is_dir():
        out_path = out_path / "manifest.jsonl"
    out_dir = out_path.parent.resolve()
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
    if not files:
        raise FolderIndexError(f"no audio files ({', '.join(AUDIO_SUFFIXES)}) found under {root}")
    iterator = files
    if progress:
        from tqdm import tqdm

        iterator = tqdm(files, desc=f"index {root.name}", unit="file", file=sys.stderr)
    rows = []
    skipped = 0
    for p in iterator:
        try:
            info = sf.info(str(p))
        except (sf.LibsndfileError, RuntimeError, TypeError, ValueError):
            skipped += 1
            continue
        if info.frames <= 0 or info.samplerate <= 0:
            skipped += 1
            continue
        rel = p.relative_to(root)
        speaker, lang, rule = infer_speaker(rel)
        group = speaker if split_by == "speaker" else "file:" + rel.as_posix()
        rows.append((p, rel, speaker, lang, rule, group, info))
    if not rows:
        raise FolderIndexError(f"none of the {len(files)} audio files under {root} could be read")
    splits = assign_groups({r[5] for r in rows}, valid, test, salt=f"index-{seed}")
    records = []
    for p, rel, speaker, lang, rule, group, info in rows:
        records.append(SegmentRecord(
            path=Path(os.path.relpath(p.resolve(), out_dir)).as_posix(),
            duration=round(info.frames / info.samplerate, 6), sample_rate=int(info.samplerate),
            source="user", speaker=speaker, language=lang, split=splits[group],
            origin=f"{rule}:{rel.as_posix()}"))
    manifest = Manifest(records, out_dir)
    manifest.save(out_path)
    if progress and skipped:
        print(f"note: skipped {skipped} unreadable file(s)", file=sys.stderr)
    return manifest
