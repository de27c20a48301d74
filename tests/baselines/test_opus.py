"""Opus baseline: RFC 6716 §3.2.1 packet-length framing, rates, settings and delay."""

from __future__ import annotations

import numpy as np
import pytest

from neurocodec.baselines.opus import split_packets, write_length
from neurocodec.baselines.tools import BaselineConfigError
from neurocodec.errors import CorruptStreamError, UserError

from baseline_helpers import make, roundtrip, speech


def test_length_coding_known_values():
    assert write_length(0) == b"\x00"
    assert write_length(251) == b"\xfb"
    assert write_length(252) == b"\xfc\x00"
    assert write_length(253) == b"\xfd\x00"
    assert write_length(256) == b"\xfc\x01"
    assert write_length(1275) == b"\xff\xff"
    with pytest.raises(ValueError):
        write_length(1276)


def test_length_coding_round_trips_every_length():
    packets = [bytes([n % 256]) * n for n in range(1276)]
    payload = b"".join(write_length(len(p)) + p for p in packets)
    assert split_packets(payload) == packets


def test_truncated_framing_is_detected():
    with pytest.raises(CorruptStreamError):
        split_packets(b"\x05abc")
    with pytest.raises(CorruptStreamError):
        split_packets(b"\xfc")


@pytest.mark.tools
def test_packets_and_overhead():
    rt = roundtrip("opus", 12.0)
    codec = make("opus")
    packets = split_packets(rt.enc.chunks[0])
    # 8 s + 104 samples lookahead in 20 ms packets
    assert codec.codec_delay_samples == 104
    assert len(packets) == -(-(128000 + 104) // 320)
    overhead = len(rt.enc.chunks[0]) - sum(len(p) for p in packets)
    assert overhead == len(packets)  # one length byte per packet below 252 bytes


@pytest.mark.tools
@pytest.mark.parametrize("kbps", [9.0, 16.0])
def test_more_rates_within_ten_percent(kbps):
    rt = roundtrip("opus", kbps)
    assert abs(rt.measured_kbps - kbps) <= 0.1 * kbps


@pytest.mark.tools
def test_cbr_packets_have_constant_size():
    rt = roundtrip("opus", 16.0, vbr="cbr")
    sizes = {len(p) for p in split_packets(rt.enc.chunks[0])}
    assert sizes == {40}  # 16 kbps * 20 ms / 8


@pytest.mark.tools
def test_application_is_a_setting_that_changes_the_stream_but_not_the_decoder():
    voip, audio = make("opus"), make("opus", application="audio")
    assert voip.config.application == "voip"
    x = speech()[:, :16000]
    a, b = voip.compress(x, 24), audio.compress(x, 24)
    assert a.chunks != b.chunks
    assert voip.config_hash() == audio.config_hash()  # any Opus decoder at 16 kHz decodes both
    y = voip.decompress(b.chunks, 1, 16000, 24)
    assert y.shape == (1, 16000) and np.corrcoef(x[0], y[0])[0, 1] > 0.9


@pytest.mark.tools
def test_48khz_setting():
    codec = make("opus", sample_rate=48000)
    assert codec.sample_rate == 48000 and codec.codec_delay_samples == 312
    assert codec.config_hash() != make("opus").config_hash()


@pytest.mark.tools
@pytest.mark.parametrize("kwargs", [{"application": "music"}, {"vbr": "abr"}, {"sample_rate": 44100},
                                    {"frame_ms": 15}, {"complexity": 11}, {"bitrate": 3}])
def test_bad_settings_are_user_errors(kwargs):
    with pytest.raises(BaselineConfigError):
        make("opus", **kwargs)
    assert issubclass(BaselineConfigError, UserError)
