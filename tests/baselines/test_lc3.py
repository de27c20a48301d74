"""LC3 baseline: fixed frame bytes, 7.5 ms frames, bytes identical to elc3's frames."""

from __future__ import annotations

import shutil
import struct
import subprocess

import numpy as np
import pytest
import soundfile as sf

from neurocodec.errors import BitrateError

from baseline_helpers import make, speech

pytestmark = pytest.mark.tools


@pytest.mark.parametrize("kbps,nbytes", [(16.0, 20), (24.0, 30), (32.0, 40), (33.3, 41), (320.0, 400)])
def test_frame_bytes_follow_the_bitrate(kbps, nbytes):
    codec = make("lc3")
    assert codec.frame_bytes(kbps) == nbytes
    enc = codec.compress(speech()[:, :1600], kbps)
    assert len(enc.chunks[0]) == codec.padded_length(1600, kbps) // 160 * nbytes


def test_delay_and_range():
    codec = make("lc3")
    assert (codec.frame_samples, codec.codec_delay_samples) == (160, 40)
    with pytest.raises(BitrateError):
        codec.validate_bitrate(15.9)
    with pytest.raises(BitrateError):
        codec.validate_bitrate(321)


def test_7_5_ms_frames():
    codec = make("lc3", frame_us=7500)
    assert (codec.frame_samples, codec.codec_delay_samples) == (120, 64)
    x = speech()[:, :16000]
    enc = codec.compress(x, 32)
    assert len(enc.chunks[0]) == codec.padded_length(16000, 32) // 120 * 30
    y = codec.decompress(enc.chunks, 1, 16000, 32)
    assert np.corrcoef(x[0], y[0])[0, 1] > 0.95


@pytest.mark.skipif(shutil.which("elc3") is None, reason="elc3 not installed (apt-get install liblc3-tools)")
def test_frames_match_elc3(tmp_path):
    codec = make("lc3")
    x = speech()[:, :16000]
    enc = codec.compress(x, 32)
    wav = tmp_path / "in.wav"
    sf.write(wav, np.clip(np.round(x[0] * 32768), -32768, 32767).astype(np.int16), 16000, subtype="PCM_16")
    out = subprocess.run(["elc3", "-b", "32000", str(wav)], capture_output=True, check=True).stdout
    hsize = struct.unpack_from("<H", out, 2)[0]
    frames, pos = [], hsize
    while pos < len(out):
        (n,) = struct.unpack_from("<H", out, pos)
        frames.append(out[pos + 2:pos + 2 + n])
        pos += 2 + n
    ours = [enc.chunks[0][i:i + 40] for i in range(0, len(enc.chunks[0]), 40)]
    assert {len(f) for f in frames} == {40}
    k = min(len(frames), len(ours)) - 1  # the last frame differs only by the zero padding
    assert frames[:k] == ours[:k] and k >= 100
