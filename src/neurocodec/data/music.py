"""Music rendered from music21's bundled score corpus through FluidSynth.

music21 ships about 3,100 score files (Bach chorales, Palestrina masses, Trecento pieces,
Monteverdi madrigals, Beethoven/Mozart/Haydn quartets, Irish and German folk tunes in ABC);
roman-numeral analyses (``.rntxt``) are skipped, and a score present in two formats
(``bach/bwv277.krn`` and ``.mxl``) is taken once.  An ABC file holding several tunes gives one
piece per tune (``X:`` number) but is one split *group*, so all its tunes stay in one split.

A piece is parsed (``converter.parse(..., forceSource=True)``, so nothing is cached on
disk), exported to Standard MIDI, cut to at most ``seconds`` of music *in the MIDI events*
(the tempo map turns seconds into ticks; notes still sounding at the cut get note-offs), and
rendered with ``fluidsynth -F`` using FluidR3_GM under a subprocess timeout.  Two styles:
``piano`` (every program change set to 0, drum channel dropped) and ``ensemble`` (the
instruments music21 assigns: choir "voice oohs" for vocal parts, strings for quartets ...).
"""

from __future__ import annotations

import functools
import re
import signal
import subprocess
import tempfile
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from ..errors import AudioError, MissingToolError, UserError
from .sources import require_tool

SOUNDFONT_CANDIDATES = (
    Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"),
    Path("/usr/share/sounds/sf2/default-GM.sf2"),
)
SKIPPED_SUFFIXES = frozenset({".rntxt"})
PARSE_TIMEOUT_S = 60
RENDER_TIMEOUT_S = 120
STYLES = ("piano", "ensemble")


@dataclass(frozen=True)
class Piece:
    """A score in music21's corpus (``number`` selects one tune of a multi-tune ABC file)."""

    path: Path
    group: str  # corpus-relative file path without suffix; the unit of splitting
    number: int | None = None

    @property
    def piece_id(self) -> str:
        return "music21:" + self.group + (f"#{self.number}" if self.number is not None else "")


@dataclass(frozen=True)
class RenderedMusic:
    """Mono float32 audio of a rendered piece and its sample rate."""

    audio: np.ndarray
    sample_rate: int
    midi_seconds: float  # length of the (cut) MIDI


class RenderTimeout(AudioError):
    """Parsing or rendering a piece took longer than its cap."""


def soundfont() -> Path:
    """The General MIDI soundfont (FluidR3_GM), or :class:`MissingToolError`."""
    for p in SOUNDFONT_CANDIDATES:
        if p.is_file():
            return p
    raise MissingToolError("no General MIDI soundfont found (apt-get install fluid-soundfont-gm)")


def _corpus_root_and_paths() -> tuple[Path, list[Path]]:
    try:
        from music21 import corpus
    except ImportError:  # pragma: no cover - music21 is a 'data' extra
        raise MissingToolError("music21 is not installed (pip install music21)") from None
    paths = sorted(Path(p) for p in corpus.getPaths())
    root = Path(corpus.__file__).parent / "_corpus"
    if not root.is_dir():  # older layout: files under corpus/ directly
        root = Path(corpus.__file__).parent
    return root, paths


@functools.lru_cache(maxsize=1)
def list_pieces() -> tuple[Piece, ...]:
    """Every piece of music21's corpus, sorted; multi-tune ABC files are expanded."""
    root, paths = _corpus_root_and_paths()
    out: list[Piece] = []
    seen: set[str] = set()
    for p in paths:
        if p.suffix.lower() in SKIPPED_SUFFIXES:
            continue
        try:
            group = p.relative_to(root).with_suffix("").as_posix()
        except ValueError:
            group = p.with_suffix("").name
        if p.suffix.lower() == ".abc":
            numbers = re.findall(r"(?m)^X:\s*(\d+)", p.read_text(encoding="latin-1"))
            if len(numbers) > 1:
                out.extend(Piece(p, group, int(n)) for n in dict.fromkeys(numbers))
                seen.add(group)
                continue
        if group in seen:  # the same score in a second format (bwv277.krn and .mxl)
            continue
        seen.add(group)
        out.append(Piece(p, group))
    return tuple(out)


@contextmanager
def time_limit(seconds: float, what: str):
    """Raise :class:`RenderTimeout` if the block runs longer than ``seconds`` (SIGALRM;
    a no-op outside the main thread)."""
    if threading.current_thread() is not threading.main_thread() or seconds <= 0:
        yield
        return

    def _alarm(signum, frame):
        raise RenderTimeout(f"{what} took over {seconds:g} s")

    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def score_to_midi(piece: Piece, timeout_s: float = PARSE_TIMEOUT_S) -> bytes:
    """Parse a piece with music21 and export it as Standard MIDI bytes (time-capped)."""
    from music21 import converter, midi, stream

    with time_limit(timeout_s, f"parsing {piece.piece_id}"):
        kwargs = {"number": piece.number} if piece.number is not None else {}
        try:
            score = converter.parse(str(piece.path), forceSource=True, **kwargs)
        except RenderTimeout:
            raise
        except Exception as exc:  # music21 raises many kinds of errors on odd files
            raise AudioError(f"music21 cannot parse {piece.piece_id}: {exc}") from None
        if isinstance(score, stream.Opus):
            if not score.scores:
                raise AudioError(f"{piece.piece_id} holds no score")
            score = score.scores[0]
        try:
            mf = midi.translate.music21ObjectToMidiFile(score)
            return mf.writestr()
        except RenderTimeout:
            raise
        except Exception as exc:
            raise AudioError(f"music21 cannot export {piece.piece_id} to MIDI: {exc}") from None


def _abs_events(track) -> list[tuple[int, object]]:
    from music21 import midi

    out, tick = [], 0
    for e in track.events:
        if isinstance(e, midi.DeltaTime):
            tick += e.time
        else:
            out.append((tick, e))
    return out


def _tempo_map(tracks) -> list[tuple[int, int]]:
    """(tick, microseconds per quarter) changes, sorted; default 120 bpm."""
    from music21 import midi

    changes = [(0, 500000)]
    for tr in tracks:
        for tick, e in _abs_events(tr):
            if e.type == midi.MetaEvents.SET_TEMPO and len(e.data) == 3:
                changes.append((tick, int.from_bytes(e.data, "big")))
    changes.sort(key=lambda c: c[0])
    return changes


def seconds_to_ticks(seconds: float, tempo_map: list[tuple[int, int]], tpq: int) -> int:
    """The MIDI tick reached after ``seconds`` under a tempo map."""
    t = 0.0
    for i, (tick, uspq) in enumerate(tempo_map):
        nxt = tempo_map[i + 1][0] if i + 1 < len(tempo_map) else None
        sec_per_tick = uspq / 1e6 / tpq
        if nxt is None or t + (nxt - tick) * sec_per_tick >= seconds:
            return tick + int((seconds - t) / sec_per_tick)
        t += (nxt - tick) * sec_per_tick
    return 0  # pragma: no cover


def ticks_to_seconds(ticks: int, tempo_map: list[tuple[int, int]], tpq: int) -> float:
    """Seconds elapsed at MIDI tick ``ticks`` under a tempo map."""
    t = 0.0
    for i, (tick, uspq) in enumerate(tempo_map):
        nxt = tempo_map[i + 1][0] if i + 1 < len(tempo_map) else None
        end = ticks if nxt is None else min(ticks, nxt)
        if end > tick:
            t += (end - tick) * uspq / 1e6 / tpq
        if nxt is None or ticks <= nxt:
            break
    return t


def cut_midi(data: bytes, seconds: float, piano: bool = False) -> tuple[bytes, float]:
    """Cut Standard MIDI bytes to at most ``seconds`` of music; optionally force piano.

    Events at or after the cut are dropped; every note still sounding there is closed with
    a note-off at the cut, and each track ends with End-of-Track.  With ``piano`` every
    program change becomes program 0 (Acoustic Grand) and channel 10 (drums) is dropped.
    Returns the new bytes and the MIDI's length in seconds (last event, at most ``seconds``).
    """
    from music21 import midi

    mf = midi.MidiFile()
    try:
        mf.readstr(data)
    except Exception as exc:
        raise AudioError(f"not a Standard MIDI file: {exc}") from None
    tpq = mf.ticksPerQuarterNote
    if not isinstance(tpq, int) or tpq <= 0:
        raise AudioError("MIDI files with SMPTE time division are not supported")
    tmap = _tempo_map(mf.tracks)
    cut = seconds_to_ticks(seconds, tmap, tpq)
    last_tick = 0
    for tr in mf.tracks:
        kept: list[tuple[int, object]] = []
        sounding: dict[tuple[int, int], int] = {}
        for tick, e in _abs_events(tr):
            if e.type == midi.MetaEvents.END_OF_TRACK:
                continue
            is_channel = e.isNoteOn() or e.isNoteOff() or e.type in (
                midi.ChannelVoiceMessages.PROGRAM_CHANGE, midi.ChannelVoiceMessages.CONTROLLER_CHANGE,
                midi.ChannelVoiceMessages.PITCH_BEND, midi.ChannelVoiceMessages.CHANNEL_KEY_PRESSURE,
                midi.ChannelVoiceMessages.POLYPHONIC_KEY_PRESSURE)
            if piano and is_channel and e.channel == 10:
                continue
            if tick >= cut:
                continue
            if piano and e.type == midi.ChannelVoiceMessages.PROGRAM_CHANGE:
                e.data = 0
            if e.isNoteOn():
                sounding[(e.channel, e.pitch)] = sounding.get((e.channel, e.pitch), 0) + 1
            elif e.isNoteOff() and sounding.get((e.channel, e.pitch)):
                sounding[(e.channel, e.pitch)] -= 1
            kept.append((tick, e))
            if e.isNoteOn() or e.isNoteOff():
                last_tick = max(last_tick, tick)
        end_tick = kept[-1][0] if kept else 0
        closers = []
        for (ch, pitch), n in sorted(sounding.items()):
            for _ in range(n):
                off = midi.MidiEvent(tr, type=midi.ChannelVoiceMessages.NOTE_OFF, channel=ch)
                off.pitch, off.velocity = pitch, 0
                closers.append((cut, off))
        if closers:
            end_tick, last_tick = cut, max(last_tick, cut)
        eot = midi.MidiEvent(tr, type=midi.MetaEvents.END_OF_TRACK)
        eot.data = b""
        events, prev = [], 0
        for tick, e in kept + closers + [(end_tick, eot)]:
            events.append(midi.DeltaTime(tr, time=tick - prev))
            events.append(e)
            prev = tick
        tr.events = events
    length = min(seconds, ticks_to_seconds(last_tick, tmap, tpq))
    return mf.writestr(), float(length)


def render_midi(data: bytes, sample_rate: int, timeout_s: float = RENDER_TIMEOUT_S,
                gain: float = 0.4) -> np.ndarray:
    """Render MIDI bytes with FluidSynth (FluidR3_GM) to mono float32 at ``sample_rate``.

    The output is cut to the MIDI length plus 2 s of release, whatever fluidsynth does."""
    exe = require_tool("fluidsynth")
    sf2 = soundfont()
    if not 8000 <= sample_rate <= 96000:
        raise UserError(f"fluidsynth renders at 8-96 kHz, not {sample_rate} Hz")
    with tempfile.TemporaryDirectory(prefix="nc-fs-") as tmp:
        mid = Path(tmp) / "in.mid"
        wav = Path(tmp) / "out.wav"
        mid.write_bytes(data)
        cmd = [exe, "-n", "-i", "-q", "-F", str(wav), "-T", "wav", "-r", str(sample_rate), "-g", f"{gain:g}",
               "-o", "synth.cpu-cores=1", str(sf2), str(mid)]
        try:
            proc = subprocess.run(cmd, capture_output=True, timeout=timeout_s, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise RenderTimeout(f"fluidsynth took over {timeout_s:g} s") from None
        if proc.returncode != 0 or not wav.is_file():
            raise AudioError(f"fluidsynth failed: {proc.stderr.decode(errors='replace').strip()[-300:]}")
        audio, sr = sf.read(str(wav), dtype="float32", always_2d=True)
    if sr != sample_rate:
        raise AudioError(f"fluidsynth wrote {sr} Hz instead of {sample_rate} Hz")
    return np.ascontiguousarray(audio.mean(axis=1))


def render_piece(piece: Piece, sample_rate: int, seconds: float, style: str = "ensemble",
                 parse_timeout_s: float = PARSE_TIMEOUT_S,
                 render_timeout_s: float = RENDER_TIMEOUT_S) -> RenderedMusic:
    """Parse, cut to ``seconds`` and render one piece in ``style`` ('piano' or 'ensemble')."""
    if style not in STYLES:
        raise UserError(f"unknown music style {style!r} (use {' or '.join(STYLES)})")
    midi_bytes = score_to_midi(piece, parse_timeout_s)
    cut, length = cut_midi(midi_bytes, seconds, piano=(style == "piano"))
    audio = render_midi(cut, sample_rate, render_timeout_s)
    audio = audio[: int(round((length + 2.0) * sample_rate))]
    return RenderedMusic(audio, sample_rate, length)
