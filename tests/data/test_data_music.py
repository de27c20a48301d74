"""Scores to MIDI, MIDI cutting / piano forcing, and FluidSynth rendering."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from neurocodec.data import music
from neurocodec.errors import AudioError, UserError

music21 = pytest.importorskip("music21")
from music21 import midi as m21midi  # noqa: E402


def _midi_bytes(n_notes=40, bpm=120, program=40, chord_at_end=True):
    """A violin line of quarter notes (n_notes * 60/bpm seconds) with a long final chord."""
    from music21 import chord, instrument, note, stream, tempo

    s = stream.Stream()
    s.append(instrument.Violin())
    s.append(tempo.MetronomeMark(number=bpm))
    for i in range(n_notes):
        s.append(note.Note(60 + i % 12, quarterLength=1.0))
    if chord_at_end:
        s.append(chord.Chord(["C4", "E4", "G4"], quarterLength=8.0))
    mf = m21midi.translate.music21ObjectToMidiFile(s)
    return mf.writestr()


def _events(data):
    mf = m21midi.MidiFile()
    mf.readstr(data)
    out = []
    for tr in mf.tracks:
        tick = 0
        for e in tr.events:
            if isinstance(e, m21midi.DeltaTime):
                tick += e.time
            else:
                out.append((tick, e))
    return mf, out


def test_tempo_map_conversions_known_values():
    tmap = [(0, 500000), (960, 1000000)]  # 120 bpm for 2 quarters, then 60 bpm
    assert music.seconds_to_ticks(0.5, tmap, 480) == 480
    assert music.seconds_to_ticks(1.5, tmap, 480) == 1200
    assert music.ticks_to_seconds(1200, tmap, 480) == pytest.approx(1.5)
    assert music.ticks_to_seconds(480, tmap, 480) == pytest.approx(0.5)


def test_cut_midi_drops_late_events_and_closes_notes():
    data = _midi_bytes(n_notes=40, bpm=120)  # 20 s of quarter notes, then a 4 s chord
    cut, length = music.cut_midi(data, 5.25)
    assert length == pytest.approx(5.25, abs=0.01)  # a note is sounding at the cut
    mf, events = _events(cut)
    tmap = music._tempo_map(mf.tracks)
    tpq = mf.ticksPerQuarterNote
    cut_tick = music.seconds_to_ticks(5.25, tmap, tpq)
    ons = [(t, e) for t, e in events if e.isNoteOn()]
    offs = [(t, e) for t, e in events if e.isNoteOff()]
    assert ons and max(t for t, _ in ons) < cut_tick
    assert max(t for t, _ in offs) <= cut_tick
    assert len(ons) == len(offs) == 11  # notes starting at 0, 0.5, ..., 5.0 s, all closed
    assert sum(1 for _, e in events if e.type == m21midi.MetaEvents.END_OF_TRACK) == len(mf.tracks)


def test_cut_midi_keeps_short_pieces_whole():
    data = _midi_bytes(n_notes=4, bpm=120, chord_at_end=False)  # 2 s
    cut, length = music.cut_midi(data, 30.0)
    assert length == pytest.approx(2.0, abs=0.01)
    assert sum(1 for _, e in _events(cut)[1] if e.isNoteOn()) == 4


def test_piano_style_sets_every_program_to_zero():
    data = _midi_bytes()
    progs = [e.data for _, e in _events(data)[1] if e.type == m21midi.ChannelVoiceMessages.PROGRAM_CHANGE]
    assert progs and all(p == 40 for p in progs)
    cut, _ = music.cut_midi(data, 3.0, piano=True)
    progs = [e.data for _, e in _events(cut)[1] if e.type == m21midi.ChannelVoiceMessages.PROGRAM_CHANGE]
    assert progs and all(p == 0 for p in progs)


def test_cut_midi_rejects_garbage():
    with pytest.raises(AudioError):
        music.cut_midi(b"not midi at all", 5.0)


def test_corpus_pieces_expand_multi_tune_abc_files():
    pieces = music.list_pieces()
    assert len(pieces) > 5000
    assert len({p.piece_id for p in pieces}) == len(pieces)
    groups = {p.group for p in pieces}
    assert 2500 < len(groups) < len(pieces)
    assert any(p.number is not None for p in pieces)
    assert not any(p.path.suffix == ".rntxt" for p in pieces)


def test_time_limit_interrupts_a_slow_block():
    import time

    with pytest.raises(music.RenderTimeout):
        with music.time_limit(0.2, "sleeping"):
            time.sleep(2)


@pytest.mark.tools
def test_render_is_capped_and_deterministic():
    if shutil.which("fluidsynth") is None:
        pytest.skip("fluidsynth is not installed (apt-get install fluidsynth fluid-soundfont-gm)")
    try:
        music.soundfont()
    except Exception:
        pytest.skip("FluidR3_GM soundfont is not installed (apt-get install fluid-soundfont-gm)")
    cut, length = music.cut_midi(_midi_bytes(), 3.0)
    a = music.render_midi(cut, 24000)
    b = music.render_midi(cut, 24000)
    assert np.array_equal(a, b)
    assert 3.0 <= len(a) / 24000 <= 6.0 and np.sqrt(np.mean(a ** 2)) > 1e-3
    piece = [p for p in music.list_pieces() if p.group.endswith("bwv66.6")][0]
    r = music.render_piece(piece, 16000, 4.0, "piano")
    assert r.midi_seconds == pytest.approx(4.0, abs=0.01)
    assert len(r.audio) <= (4.0 + 2.0) * 16000
    with pytest.raises(UserError):
        music.render_piece(piece, 16000, 4.0, "kazoo")
