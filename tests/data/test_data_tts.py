"""Synthetic speakers: discovery, split groups and synthesis with each engine."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from neurocodec.data.build import tts_splits
from neurocodec.data.tts import Prosody, TtsVoice, list_voices, synthesize

pytestmark = pytest.mark.tools


def _need(tool):
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed")


def test_espeak_speakers_are_accent_times_variant():
    _need("espeak-ng")
    voices = [v for v in list_voices() if v.engine == "espeak-ng"]
    assert len(voices) > 100
    ids = [v.speaker_id for v in voices]
    assert len(ids) == len(set(ids))
    assert "espeak-ng:en-us+m3" in ids
    assert not any("robosoft" in i or "+fast" in i for i in ids)
    assert all(v.group == f"espeak-variant:{v.variant}" for v in voices)


def test_same_person_voices_share_a_split():
    _need("flite")
    voices = list_voices()
    splits = tts_splits(voices, 0.1, 0.1)
    by_group = {}
    for v in voices:
        by_group.setdefault(v.group, set()).add(splits[v.speaker_id])
    assert all(len(s) == 1 for s in by_group.values())
    assert set(splits.values()) == {"train", "valid", "test"}


@pytest.mark.parametrize("engine,voice,tool", [
    ("espeak-ng", "en-us", "espeak-ng"), ("flite", "slt", "flite"),
    ("festival", "kal_diphone", "text2wave"), ("festival", "cmu_us_slt_arctic_hts", "text2wave")])
def test_each_engine_speaks_and_rate_changes_duration(engine, voice, tool):
    _need(tool)
    v = [x for x in list_voices() if x.engine == engine and x.voice == voice]
    if not v:
        pytest.skip(f"{engine} voice {voice} is not installed")
    v = v[0]
    text = "The quick brown fox jumps over the lazy dog near the river bank."
    slow, sr = synthesize(v, text, Prosody(rate=0.8))
    fast, sr2 = synthesize(v, text, Prosody(rate=1.2))
    assert sr == sr2 and sr >= 16000
    assert slow.dtype == np.float32 and np.sqrt(np.mean(slow ** 2)) > 0.01
    assert 1.5 < len(fast) / sr < len(slow) / sr < 8.0
    again, _ = synthesize(v, text, Prosody(rate=0.8))
    assert np.array_equal(again, slow)  # engines are deterministic


def test_unknown_engine_is_rejected():
    with pytest.raises(ValueError):
        synthesize(TtsVoice("sam", "x"), "hello")
