"""Synthetic speakers from the text-to-speech engines Debian ships.

A speaker is ``(engine, voice, variant)``:

* ``espeak-ng`` - every English accent (``en``, ``en-US``, ``en-GB-x-rp`` ...) times every
  voice variant in ``espeak-ng-data/voices/!v`` (m1..m8, f1..f5, klatt*, croak, whisper,
  the named community variants), except variants with a strong echo (amplitude above 30:
  the robot voices) and the unstable ``fast`` test variant;
* ``flite`` - the CMU voices kal16, awb, rms, slt;
* ``festival`` - ``kal_diphone`` and ``cmu_us_slt_arctic_hts``.

Each speaker also has a *group*, the identity that must stay within one split: an
espeak-ng variant (its formant and pitch settings are the "person"; the accent only changes
pronunciation) or the recorded person behind a flite/festival voice (flite kal16 and
festival kal_diphone are both Kevin Lenzo's diphones; flite slt and festival slt_hts are
both the CMU ARCTIC speaker slt).

Every utterance gets its own speaking rate (+-15 %) and, where the engine allows,
mean pitch (+-10 %), drawn from the item's random generator.
"""

from __future__ import annotations

import functools
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from ..errors import AudioError
from .sources import require_tool

#: flite voices used, with the recorded person behind each and its natural mean F0 (Hz)
FLITE_VOICES = {"kal16": ("person:kal", 95.0), "awb": ("person:awb", 130.0),
                "rms": ("person:rms", 100.0), "slt": ("person:slt", 175.0)}
#: festival voices used: (scheme function, folder that must exist, person group)
FESTIVAL_VOICES = {
    "kal_diphone": ("voice_kal_diphone", "english/kal_diphone", "person:kal"),
    "cmu_us_slt_arctic_hts": ("voice_cmu_us_slt_arctic_hts", "us/cmu_us_slt_arctic_hts", "person:slt"),
}
FESTIVAL_VOICE_DIRS = (Path("/usr/share/festival/voices"),)
ESPEAK_EXCLUDED_VARIANTS = frozenset({"fast"})
#: variants whose echo amplitude exceeds this (robosoft*, Demonic, UniRobot ...) are left out
ESPEAK_MAX_ECHO = 30
SYNTH_TIMEOUT_S = 60


@dataclass(frozen=True)
class TtsVoice:
    """One synthetic speaker."""

    engine: str  # 'espeak-ng' | 'flite' | 'festival'
    voice: str  # accent for espeak-ng, voice name otherwise
    variant: str = ""  # espeak-ng voice variant
    group: str = ""  # identity kept within one split

    @property
    def speaker_id(self) -> str:
        return f"{self.engine}:{self.voice}" + (f"+{self.variant}" if self.variant else "")


@dataclass(frozen=True)
class Prosody:
    """Per-utterance settings: speaking-rate factor (>1 is faster) and pitch factor."""

    rate: float = 1.0
    pitch: float = 1.0

    @classmethod
    def draw(cls, rng: np.random.Generator) -> "Prosody":
        return cls(rate=float(rng.uniform(0.85, 1.15)), pitch=float(rng.uniform(0.9, 1.1)))


@functools.lru_cache(maxsize=1)
def espeak_data_dir() -> Path | None:
    """The espeak-ng data folder, as reported by ``espeak-ng --version``."""
    try:
        exe = require_tool("espeak-ng")
    except Exception:
        return None
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30).stdout
    m = re.search(r"Data at:\s*(\S+)", out)
    return Path(m.group(1)) if m else None


def espeak_voices() -> list[TtsVoice]:
    """English accents x human-sounding variants available in espeak-ng."""
    data = espeak_data_dir()
    if data is None:
        return []
    accents = sorted(p.name for p in (data / "lang" / "gmw").glob("en*") if p.is_file())
    variants = []
    for p in sorted((data / "voices" / "!v").glob("*")):
        if not p.is_file() or p.name in ESPEAK_EXCLUDED_VARIANTS:
            continue
        settings = p.read_text(encoding="utf-8", errors="replace")
        echo = re.search(r"(?m)^\s*echo\s+(\d+)\s+(\d+)", settings)
        if echo and int(echo.group(2)) > ESPEAK_MAX_ECHO:
            continue  # strong echo = robot voices
        variants.append(p.name)
    return [TtsVoice("espeak-ng", a.lower(), v, f"espeak-variant:{v}") for v in variants for a in accents]


@functools.lru_cache(maxsize=1)
def _flite_available() -> tuple[str, ...]:
    try:
        exe = require_tool("flite")
    except Exception:
        return ()
    out = subprocess.run([exe, "-lv"], capture_output=True, text=True, timeout=30).stdout
    return tuple(out.split(":", 1)[-1].split())


def flite_voices() -> list[TtsVoice]:
    """The flite voices of :data:`FLITE_VOICES` that this flite build has."""
    have = set(_flite_available())
    return [TtsVoice("flite", v, "", g) for v, (g, _f0) in FLITE_VOICES.items() if v in have]


def festival_voices() -> list[TtsVoice]:
    """The festival voices of :data:`FESTIVAL_VOICES` whose data is installed."""
    try:
        require_tool("text2wave")
    except Exception:
        return []
    out = []
    for name, (_fn, folder, group) in FESTIVAL_VOICES.items():
        if any((d / folder).is_dir() for d in FESTIVAL_VOICE_DIRS):
            out.append(TtsVoice("festival", name, "", group))
    return out


def list_voices(engines: tuple[str, ...] = ("espeak-ng", "flite", "festival")) -> list[TtsVoice]:
    """All synthetic speakers available here, sorted by speaker id."""
    found: list[TtsVoice] = []
    if "espeak-ng" in engines:
        found += espeak_voices()
    if "flite" in engines:
        found += flite_voices()
    if "festival" in engines:
        found += festival_voices()
    return sorted(found, key=lambda v: v.speaker_id)


def _command(voice: TtsVoice, prosody: Prosody, text_file: Path, wav: Path) -> list[str]:
    if voice.engine == "espeak-ng":
        rate = int(round(175 * prosody.rate))  # words per minute, espeak default 175
        pitch = int(np.clip(round(50 * prosody.pitch), 0, 99))  # 0..99, default 50
        return [require_tool("espeak-ng"), "-v", f"{voice.voice}+{voice.variant}", "-s", str(rate),
                "-p", str(pitch), "-w", str(wav), "-f", str(text_file)]
    if voice.engine == "flite":
        f0 = FLITE_VOICES[voice.voice][1] * prosody.pitch
        return [require_tool("flite"), "-voice", voice.voice, "-f", str(text_file), "-o", str(wav),
                "--setf", f"duration_stretch={1.0 / prosody.rate:.4f}",
                "--setf", f"int_f0_target_mean={f0:.1f}"]
    if voice.engine == "festival":
        fn = FESTIVAL_VOICES[voice.voice][0]
        evals = [f"({fn})"]
        if voice.voice.endswith("_hts"):
            # the HTS engine takes a speed factor ("-r"); it has no pitch control here
            evals.append(f"(set! hts_engine_params (append hts_engine_params '((\"-r\" {prosody.rate:.4f}))))")
        else:
            evals.append(f"(Parameter.set 'Duration_Stretch {1.0 / prosody.rate:.4f})")
            f0 = 105.0 * prosody.pitch
            evals.append(f"(set! int_lr_params '((target_f0_mean {f0:.1f}) (target_f0_std 14) "
                         "(model_f0_mean 170) (model_f0_std 34)))")
        cmd = [require_tool("text2wave")]
        for e in evals:
            cmd += ["-eval", e]
        return cmd + [str(text_file), "-o", str(wav)]
    raise ValueError(f"unknown TTS engine {voice.engine!r}")


def synthesize(voice: TtsVoice, text: str, prosody: Prosody = Prosody()) -> tuple[np.ndarray, int]:
    """Speak ``text`` with ``voice``: mono float32 samples and the engine's sample rate."""
    with tempfile.TemporaryDirectory(prefix="nc-tts-") as tmp:
        text_file = Path(tmp) / "text.txt"
        text_file.write_text(text + "\n", encoding="utf-8")
        wav = Path(tmp) / "out.wav"
        cmd = _command(voice, prosody, text_file, wav)
        try:
            proc = subprocess.run(cmd, capture_output=True, timeout=SYNTH_TIMEOUT_S, cwd=tmp)
        except subprocess.TimeoutExpired:
            raise AudioError(f"{voice.speaker_id} took over {SYNTH_TIMEOUT_S} s to speak {text[:40]!r}") from None
        if proc.returncode != 0 or not wav.is_file():
            err = proc.stderr.decode(errors="replace").strip()[-300:]
            raise AudioError(f"{voice.speaker_id} failed to synthesize {text[:40]!r}: {err}")
        data, sr = sf.read(str(wav), dtype="float32", always_2d=True)
    return np.ascontiguousarray(data.mean(axis=1)), int(sr)
