"""MP3 and AAC baselines (ffmpeg): payloads are valid .mp3 / ADTS streams, CBR frame sizes."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf

from baseline_helpers import make, roundtrip, speech

pytestmark = pytest.mark.tools


def mp3_frames(data: bytes) -> list[int]:
    """Byte offsets of the MPEG-2 Layer III frames (ISO/IEC 13818-3 header, 16 kHz)."""
    rates = (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)
    pos, offsets = 0, []
    while pos < len(data):
        assert data[pos] == 0xFF and data[pos + 1] & 0xE0 == 0xE0, f"no sync at {pos}"
        br = rates[data[pos + 2] >> 4]
        pad = (data[pos + 2] >> 1) & 1
        offsets.append(pos)
        pos += 72000 * br // 16000 + pad
    assert pos == len(data)
    return offsets


@pytest.mark.parametrize("kbps", [32.0, 64.0])
def test_mp3_payload_is_bare_cbr_frames(kbps):
    rt = roundtrip("mp3", kbps)
    data = rt.enc.chunks[0]
    assert data[:3] != b"ID3"
    frames = mp3_frames(data)
    assert all(data[o + 2] >> 4 == {32.0: 4, 64.0: 8}[kbps] for o in frames)  # every frame at the rate
    assert len(frames) * 576 >= 128000 + 1105


def test_mp3_payload_decodes_with_libsndfile():
    rt = roundtrip("mp3", 64.0)
    try:
        y, sr = sf.read(io.BytesIO(rt.enc.chunks[0]), dtype="float32")
    except Exception as exc:  # libsndfile < 1.1 has no MP3
        pytest.skip(f"libsndfile cannot read MP3: {exc}")
    assert sr == 16000
    seg = y[1105:1105 + 128000]
    assert np.corrcoef(seg, rt.out[0][: seg.shape[0]])[0, 1] > 0.99


def test_mp3_48k_uses_mpeg1_ladder():
    codec = make("mp3", sample_rate=48000)
    assert codec.frame_samples == 1152 and 320.0 in codec.bitrates.choices and 8.0 not in codec.bitrates.choices


def test_aac_payload_is_adts():
    rt = roundtrip("aac", 24.0)
    data = rt.enc.chunks[0]
    pos, n = 0, 0
    while pos < len(data):
        assert data[pos] == 0xFF and data[pos + 1] & 0xF6 == 0xF0  # ADTS sync, layer 0
        assert (data[pos + 2] >> 6) == 1  # profile: AAC LC
        assert (data[pos + 2] >> 2) & 0xF == 8  # sampling frequency index 8 = 16 kHz
        length = ((data[pos + 3] & 3) << 11) | (data[pos + 4] << 3) | (data[pos + 5] >> 5)
        pos, n = pos + length, n + 1
    assert pos == len(data)
    assert n * 1024 >= 128000 + 1024


def test_aac_rate_follows_target():
    lo, hi = roundtrip("aac", 16.0).measured_kbps, roundtrip("aac", 32.0).measured_kbps
    assert 16 <= lo <= 18.4 and 32 <= hi <= 36.8


def test_aac_range():
    codec = make("aac")
    assert (codec.bitrates.minimum, codec.bitrates.maximum) == (12.0, 64.0)
    x = speech()[:, :4000]
    assert codec.compress(x, 12).num_bytes > 0
