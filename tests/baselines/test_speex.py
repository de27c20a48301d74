"""Speex baseline: the quality -> bitrate ladder, bit-packed frames, truncation."""

from __future__ import annotations

import pytest

from neurocodec.baselines.speex import QUALITY_KBPS
from neurocodec.errors import CorruptStreamError

from baseline_helpers import make, roundtrip, speech

pytestmark = pytest.mark.tools


def test_ladder_is_what_libspeex_reports():
    codec = make("speex")
    assert [codec.reported_kbps(q) for q in range(11)] == list(QUALITY_KBPS)
    assert codec.bitrates.choices == QUALITY_KBPS


@pytest.mark.parametrize("quality", [0, 4, 10])
def test_frames_are_bit_packed_without_per_frame_padding(quality):
    codec = make("speex")
    kbps = QUALITY_KBPS[quality]
    x = speech()[:, :16000]
    enc = codec.compress(x, kbps)
    frames = codec.padded_length(16000, kbps) // 320
    bits_per_frame = round(kbps * 1000 * 0.02)
    assert len(enc.chunks[0]) == -(-(frames * bits_per_frame) // 8)  # padded once to a whole byte


def test_delay_is_the_lookahead_of_encoder_and_decoder():
    assert make("speex").codec_delay_samples == 223


def test_truncated_stream_is_detected():
    codec = make("speex")
    enc = codec.compress(speech()[:, :16000], 23.8)
    for cut in (1, 40):
        with pytest.raises(CorruptStreamError):
            codec.decompress([enc.chunks[0][:-cut]], 1, 16000, 23.8)
    with pytest.raises(CorruptStreamError):  # trailing bytes are not silently ignored
        codec.decompress([enc.chunks[0] + b"\0" * 60], 1, 16000, 23.8)


def test_quality_increases_with_rate():
    assert roundtrip("speex", 12.8).pesq_wb() < roundtrip("speex", 23.8).pesq_wb()
