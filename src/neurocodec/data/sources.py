"""Audio that Debian packages carry: real speech prompts, real music, and the tools.

* Real speech: the Asterisk IVR prompts (``asterisk-core-sounds-{en,es,fr}-g722``),
  16 kHz G.722, recorded by two professional voice talents: Allison Smith (en_US and
  es_MX prompts - one person, hence one speaker id ``asterisk:allison``) and June Wallack
  (fr_CA prompts, ``asterisk:june``), as the packages' copyright files state.
  Split policy: Allison is train, June is test, so test speech comes from a person no
  model trained on; valid holds no real recorded speech (only held-out TTS speakers).
* Real music: the five tracks of ``asterisk-moh-opsound-g722`` (16 kHz G.722), split by
  track (:data:`MUSIC_TRACK_SPLITS`).

G.722 is decoded with ffmpeg (``-f g722``); a raw G.722 file holds 8,000 bytes per second.
Non-speech prompts (beeps, tones, the "monkeys" sound effect, the ``silence/`` folder)
are excluded by name.
"""

from __future__ import annotations

import functools
import gzip
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import AudioError, MissingToolError

ASTERISK_SOUNDS = Path("/usr/share/asterisk/sounds")
ASTERISK_MOH = Path("/usr/share/asterisk/moh")
ASTERISK_DOCS = Path("/usr/share/doc")

#: (folder under ASTERISK_SOUNDS, speaker id, language, Debian package)
REAL_SPEECH_FOLDERS = (
    ("en_US_f_Allison", "asterisk:allison", "en", "asterisk-core-sounds-en-g722"),
    ("es_MX_f_Allison", "asterisk:allison", "es", "asterisk-core-sounds-es-g722"),
    ("fr_CA_f_June", "asterisk:june", "fr", "asterisk-core-sounds-fr-g722"),
)
#: fixed split of the real speakers (documented policy, see module docstring)
REAL_SPEAKER_SPLITS = {"asterisk:allison": "train", "asterisk:june": "test"}
#: prompts that are not speech
NON_SPEECH_STEMS = frozenset({"beep", "beeperr", "ascending-2tone", "descending-2tone", "tt-monkeys"})
NON_SPEECH_DIRS = frozenset({"silence"})

#: split of the five music-on-hold tracks (by track: no track is in two splits)
MUSIC_TRACK_SPLITS = {
    "macroform-cold_day": "train",
    "macroform-the_simplicity": "train",
    "reno_project-system": "train",
    "manolo_camp-morning_coffee": "valid",
    "macroform-robot_dity": "test",
}
G722_RATE = 16000
G722_BYTES_PER_SECOND = 8000
G722_BANDWIDTH_HZ = 7000.0

#: Debian package that provides each tool
TOOL_PACKAGES = {
    "ffmpeg": "ffmpeg",
    "espeak-ng": "espeak-ng",
    "flite": "flite",
    "text2wave": "festival festvox-kallpc16k festvox-us-slt-hts",
    "fluidsynth": "fluidsynth fluid-soundfont-gm",
}


@dataclass(frozen=True)
class RealFile:
    """A G.722 file from an Asterisk package: prompt or music track."""

    path: Path
    key: str  # e.g. 'en_US_f_Allison/digits/1' or 'reno_project-system'
    speaker: str  # '' for music
    piece: str  # '' for speech
    language: str
    split: str

    @property
    def duration(self) -> float:
        """Duration in seconds, from the file size (raw G.722 is 64 kbit/s)."""
        return self.path.stat().st_size / G722_BYTES_PER_SECOND


def require_tool(name: str) -> str:
    """Path of a system tool, or :class:`MissingToolError` naming its Debian package."""
    path = shutil.which(name)
    if path is None:
        pkg = TOOL_PACKAGES.get(name, name)
        raise MissingToolError(f"'{name}' is not installed (apt-get install {pkg})")
    return path


def decode_g722(path: str | Path) -> np.ndarray:
    """Decode a raw G.722 file to mono float32 samples at 16 kHz with ffmpeg."""
    ffmpeg = require_tool("ffmpeg")
    proc = subprocess.run(
        [ffmpeg, "-nostdin", "-v", "error", "-f", "g722", "-i", str(path), "-f", "f32le", "-ac", "1",
         "-ar", str(G722_RATE), "pipe:1"],
        capture_output=True, timeout=120,
    )
    if proc.returncode != 0:
        raise AudioError(f"ffmpeg could not decode G.722 file {path}: {proc.stderr.decode(errors='replace').strip()}")
    return np.frombuffer(proc.stdout, dtype="<f4").astype(np.float32)


@functools.lru_cache(maxsize=8)
def prompt_transcripts(language: str, docs: Path = ASTERISK_DOCS) -> dict[str, str]:
    """Transcripts of the prompts of one language ('en', 'es', 'fr'), keyed by the prompt's
    path without suffix (``digits/1``), from ``core-sounds-XX.txt.gz`` (empty if absent)."""
    path = docs / f"asterisk-core-sounds-{language}" / f"core-sounds-{language}.txt.gz"
    if not path.is_file():
        return {}
    out = {}
    with gzip.open(path, "rt", encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith(";") or ":" not in line:
                continue
            name, _, text = line.partition(":")
            text = text.strip()
            if name.strip() and text and not text.startswith("["):
                out.setdefault(name.strip(), text)
    return out


def real_speech_files(root: Path = ASTERISK_SOUNDS) -> list[RealFile]:
    """All speech prompts found, sorted by key (empty if the packages are missing)."""
    out = []
    for folder, speaker, lang, _pkg in REAL_SPEECH_FOLDERS:
        base = root / folder
        if not base.is_dir():
            continue
        for p in sorted(base.rglob("*.g722")):
            rel = p.relative_to(base)
            if p.stem in NON_SPEECH_STEMS or any(part in NON_SPEECH_DIRS for part in rel.parts[:-1]):
                continue
            key = f"{folder}/{rel.with_suffix('').as_posix()}"
            out.append(RealFile(p, key, speaker, "", lang, REAL_SPEAKER_SPLITS[speaker]))
    return out


def real_music_files(root: Path = ASTERISK_MOH) -> list[RealFile]:
    """The music-on-hold tracks found, sorted (unknown tracks go to train)."""
    if not root.is_dir():
        return []
    return [RealFile(p, p.stem, "", "moh:" + p.stem, "", MUSIC_TRACK_SPLITS.get(p.stem, "train"))
            for p in sorted(root.glob("*.g722"))]
