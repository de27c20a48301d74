"""Codec 2 baseline: frame sizes per mode, bytes identical to c2enc, pitch kept on a buzz."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from neurocodec.baselines.codec2 import MODE_NAMES, MODES

from baseline_helpers import make, speech

pytestmark = pytest.mark.tools

# (samples per frame at 8 kHz, bytes per frame) of each mode; 1300 and 700C round bits up
SHAPES = {3.2: (160, 8), 2.4: (160, 6), 1.6: (320, 8), 1.4: (320, 7), 1.3: (320, 7), 1.2: (320, 6), 0.7: (320, 4)}


def test_mode_shapes_and_exact_rates():
    codec = make("codec2")
    x = speech(8000)[:, :8000]
    for kbps, (spf, bpf) in SHAPES.items():
        assert codec.frame_length(kbps) == spf and codec.frame_bytes(kbps) == bpf
        enc = codec.compress(x, kbps)
        frames = codec.padded_length(8000, kbps) // spf
        assert len(enc.chunks[0]) == frames * bpf
        assert bpf * 8 * 8000 / spf / 1000 == pytest.approx({1.3: 1.4, 0.7: 0.8}.get(kbps, kbps))


@pytest.mark.skipif(shutil.which("c2enc") is None, reason="c2enc not installed (apt-get install codec2)")
@pytest.mark.parametrize("kbps", [3.2, 1.3, 0.7])
def test_payload_is_what_c2enc_writes(kbps):
    codec = make("codec2")
    x = speech(8000)[:, :16000]
    enc = codec.compress(x, kbps)
    q = np.clip(np.round(x[0] * 32768), -32768, 32767).astype("<i2")
    q = np.concatenate([q, np.zeros(codec.padded_length(16000, kbps) - 16000, "<i2")])
    ref = subprocess.run(["c2enc", MODE_NAMES[kbps], "-", "-"], input=q.tobytes(), capture_output=True,
                         check=True).stdout
    assert ref == enc.chunks[0]


@pytest.mark.parametrize("kbps", list(MODES))
def test_pitch_of_a_buzz_is_kept(kbps):
    codec = make("codec2")
    t = np.arange(8000) / 8000
    x = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 23))
    x = (0.4 * x / np.abs(x).max()).astype(np.float32)[None, :]
    enc = codec.compress(x, kbps)
    y = codec.decompress(enc.chunks, 1, 8000, kbps)[0, 2000:6000]
    ac = np.correlate(y, y, "full")[y.shape[0] - 1:]
    period = 20 + int(np.argmax(ac[20:160]))  # 50-400 Hz
    assert abs(8000 / period - 150) < 5
    assert 0.3 < np.sqrt(np.mean(y ** 2)) / np.sqrt(np.mean(x[0, 2000:6000] ** 2)) < 2
