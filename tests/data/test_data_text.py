"""The prose the TTS speakers read."""

from __future__ import annotations

import numpy as np
import pytest

from neurocodec.data import text
from neurocodec.errors import MissingToolError

HAVE_ALICE = any(p.is_file() for p in text.TEXT_CANDIDATES)


def test_split_sentences_known_value():
    s = "She ran. 'Oh dear!' said the Rabbit. Why? (Nobody knew.) the end"
    assert text.split_sentences(s) == ["She ran.", "Oh dear!' said the Rabbit.", "Why?",
                                        "(Nobody knew.) the end"]


def test_long_sentences_are_cut_at_punctuation():
    long = "one two three four five six, seven eight nine ten eleven twelve thirteen fourteen fifteen"
    parts = text._chunk(long, 10)
    assert parts[0] == "one two three four five six"
    assert all(len(p.split()) <= 10 for p in parts)
    assert " ".join(parts).replace(",", "") == long.replace(",", "")


def test_missing_text_is_a_missing_tool_error(tmp_path):
    with pytest.raises(MissingToolError, match="flite"):
        text.load_sentences(path=str(tmp_path / "nothing"))


@pytest.mark.tools
@pytest.mark.skipif(not HAVE_ALICE, reason="flite's example text (apt-get install flite) is not installed")
def test_alice_pool_is_large_and_clean():
    pool = text.load_sentences()
    assert len(pool) > 250
    assert sum(len(s.split()) for s in pool) > 4000
    assert all(len(s.split()) <= 22 + 3 for s in pool)  # a short tail joins the last piece
    assert not any("`" in s or "CHAPTER" in s or "VERY" in s for s in pool)
    assert pool[0].startswith("Alice was beginning to get very tired")


@pytest.mark.tools
@pytest.mark.skipif(not HAVE_ALICE, reason="flite's example text (apt-get install flite) is not installed")
def test_utterances_are_reproducible_and_varied():
    pool = text.load_sentences()
    a = [text.pick_utterance(np.random.default_rng(7), pool) for _ in range(3)]
    assert len(set(a)) == 1
    rng = np.random.default_rng(0)
    many = [text.pick_utterance(rng, pool) for _ in range(100)]
    assert len(set(many)) > 80
    assert all(6 <= len(u.split()) or u in pool for u in many)
