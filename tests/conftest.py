"""Shared fixtures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


@pytest.fixture
def speech_path() -> Path:
    return EXAMPLES / "speech.flac"


@pytest.fixture
def music_path() -> Path:
    return EXAMPLES / "music.flac"


@pytest.fixture
def sine():
    """A 0.5 s, 440 Hz sine at 16 kHz, mono (1, 8000) float32."""
    t = np.arange(8000) / 16000
    return (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None, :]
