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


@pytest.fixture
def md5_per_thread_count():
    """``f(encode) -> [md5 with 1 torch thread, md5 with 2]`` of the bytes ``encode()`` returns
    (golden-bitstream tests: the streams must not depend on the thread count)."""
    import hashlib

    import torch

    def run(encode) -> list[str]:
        before = torch.get_num_threads()
        digests = []
        try:
            for n in (1, 2):
                torch.set_num_threads(n)
                digests.append(hashlib.md5(encode()).hexdigest())
        finally:
            torch.set_num_threads(before)
        return digests

    return run
