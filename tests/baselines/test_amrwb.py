"""AMR-WB baseline: RFC 4867 storage frames, exact rates for all nine modes, quality ordering,
and an independent decoder (ffmpeg's native AMR-WB decoder) on the same payload."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from neurocodec.baselines.amrwb import MODES_KBPS, split_frames, storage_frame_bytes

from baseline_helpers import make, roundtrip, speech

pytestmark = pytest.mark.tools

FRAME_BYTES = (18, 24, 33, 37, 41, 47, 51, 59, 61)  # RFC 4867 §5.3: ToC byte + ceil(bits / 8)


def test_storage_frame_sizes():
    assert tuple(storage_frame_bytes(m) for m in range(9)) == FRAME_BYTES
    assert storage_frame_bytes(9) == 6 and storage_frame_bytes(15) == 1


@pytest.mark.parametrize("mode", range(9))
def test_every_mode_has_exact_rate_and_toc(mode):
    codec = make("amrwb")
    kbps = MODES_KBPS[mode]
    x = speech()[:, :8000]  # 0.5 s: 25 frames + 1 for the 94-sample delay
    enc = codec.compress(x, kbps)
    frames = split_frames(enc.chunks[0])
    assert len(frames) == 26
    assert {len(f) for f in frames} == {FRAME_BYTES[mode]}
    assert {f[0] for f in frames} == {(mode << 3) | 0x04}  # frame type, quality bit set
    assert len(enc.chunks[0]) * 8 * 50 / len(frames) == 8 * FRAME_BYTES[mode] * 50


def test_measured_rate_on_speech_is_frame_bytes_times_fifty():
    rt = roundtrip("amrwb", 12.65)
    frames = len(split_frames(rt.enc.chunks[0]))
    assert rt.enc.num_bytes == frames * 33
    assert frames == -(-(128000 + 94) // 320)


def test_quality_increases_with_mode():
    scores = [roundtrip("amrwb", k).pesq_wb() for k in (6.6, 12.65, 23.85)]
    assert scores[0] < scores[1] < scores[2]


@pytest.mark.slow
def test_quality_all_modes_roughly_monotonic():
    scores = [roundtrip("amrwb", k).pesq_wb() for k in MODES_KBPS]
    assert all(b > a - 0.1 for a, b in zip(scores, scores[1:])), scores
    assert scores[-1] > scores[0] + 0.8


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed (apt-get install ffmpeg)")
def test_payload_is_a_valid_awb_file_for_another_decoder(tmp_path):
    rt = roundtrip("amrwb", 23.85)
    path = tmp_path / "speech.awb"
    path.write_bytes(b"#!AMR-WB\n" + rt.enc.chunks[0])
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "s16le", "-"],
                         capture_output=True, check=True).stdout
    other = np.frombuffer(raw, "<i2").astype(np.float32) / 32768
    other = other[94:94 + rt.out.shape[1]]  # ffmpeg keeps the codec delay
    assert np.corrcoef(other, rt.out[0])[0, 1] > 0.98
