"""Shared fixtures of the listening-test tests: a tiny prepared test (two items, pcm and mdct)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf


def _make_items(folder, seconds: float = 1.5, sr: int = 16000):
    """Two short synthetic items in two sub-folders (groups 'speech' and 'music')."""
    rng = np.random.default_rng(1)
    t = np.arange(int(seconds * sr)) / sr
    speechlike = 0.3 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(2 * np.pi * 3 * t)) / 2 + 0.02 * rng.standard_normal(t.size)
    musiclike = 0.2 * (np.sin(2 * np.pi * 440 * t) + np.sin(2 * np.pi * 2637 * t) + 0.5 * np.sin(2 * np.pi * 5200 * t))
    (folder / "speech").mkdir(parents=True, exist_ok=True)
    (folder / "music").mkdir(parents=True, exist_ok=True)
    sf.write(folder / "speech" / "a.wav", speechlike.astype(np.float32), sr)
    sf.write(folder / "music" / "b.wav", musiclike.astype(np.float32), sr)
    return folder


@pytest.fixture
def make_items():
    """``make_items(folder, seconds=1.5)``: writes the two synthetic items, returns ``folder``."""
    return _make_items


@pytest.fixture(scope="session")
def tiny_test_template(tmp_path_factory):
    """A prepared test folder (never served directly: copy it with :func:`fresh_test`)."""
    from neurocodec.listen.prepare import find_items, parse_conditions, prepare_test

    root = tmp_path_factory.mktemp("listen")
    items = find_items(_make_items(root / "items"))
    prepare_test(items, parse_conditions("pcm:256,mdct:16"), root / "test", raters=4, seed=3, title="Tiny test")
    return root / "test"


@pytest.fixture
def fresh_test(tiny_test_template, tmp_path):
    """A private copy of the tiny test, without ratings."""
    import shutil

    dst = tmp_path / "test"
    shutil.copytree(tiny_test_template, dst)
    return dst
