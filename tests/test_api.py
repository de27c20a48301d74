import numpy as np
import pytest

import neurocodec
from neurocodec import api
from neurocodec.bitstream import StreamHeader, pack, unpack
from neurocodec.errors import (
    AudioError,
    BitrateError,
    UnknownCodecError,
    UnsupportedVersionError,
    WeightsError,
)


def tone(sr, seconds=0.5, freq=300.0, channels=1):
    t = np.arange(int(sr * seconds)) / sr
    x = np.stack([0.3 * np.sin(2 * np.pi * freq * (c + 1) * t) for c in range(channels)])
    return x.astype(np.float32)


@pytest.mark.parametrize("sr,channels,n", [(16000, 1, 8000), (44100, 2, 22051), (8000, 3, 4001), (48000, 1, 7)])
def test_pcm_round_trip_restores_rate_channels_length(sr, channels, n):
    x = tone(sr, channels=channels)[:, :n]
    codec = neurocodec.load("pcm")
    data = codec.compress(x, sr)
    y, out_sr = neurocodec.api.decompress(data)
    assert out_sr == sr and y.shape == x.shape and y.dtype == np.float32
    if n > 1000:
        # a low tone survives resampling to 16 kHz and back
        assert np.max(np.abs(y[:, 200:-200] - x[:, 200:-200])) < 2e-3


def test_accepts_torch_and_1d():
    import torch

    x = tone(16000)[0]
    a = neurocodec.load("pcm").compress(torch.from_numpy(x), 16000)
    b = neurocodec.load("pcm").compress(x, 16000)
    assert a == b


def test_output_sample_rate_override():
    x = tone(16000)
    y, sr = neurocodec.load("pcm").decompress(neurocodec.load("pcm").compress(x, 16000), sample_rate=8000)
    assert sr == 8000 and y.shape == (1, 4000)


def test_downmix_channels():
    x = tone(16000, channels=2)
    data = neurocodec.load("pcm").compress(x, 16000, channels=1)
    y, _ = api.decompress(data)
    assert y.shape == (1, x.shape[1])
    np.testing.assert_allclose(y[0], x.mean(0), atol=1e-4)


def test_bad_inputs():
    codec = neurocodec.load("pcm")
    with pytest.raises(AudioError):
        codec.compress(np.zeros((1, 0), np.float32), 16000)
    with pytest.raises(AudioError):
        codec.compress(np.array([0.0, np.nan, 0.1], np.float32), 16000)
    with pytest.raises(AudioError):
        codec.compress(np.array([0.0, np.inf], np.float32), 16000)
    with pytest.raises(BitrateError):
        codec.compress(tone(16000), 16000, bitrate=12)
    with pytest.raises(UnknownCodecError):
        neurocodec.load("nope")


def _restamp(data: bytes, **changes) -> bytes:
    s = unpack(data)
    return pack(StreamHeader(**{**s.header.__dict__, **changes}), s.chunks)


def test_stream_from_unknown_codec_version_or_config():
    data = neurocodec.load("pcm").compress(tone(16000), 16000)
    with pytest.raises(UnsupportedVersionError):
        api.decompress(_restamp(data, codec_version=99))
    with pytest.raises(WeightsError):
        api.decompress(_restamp(data, config_hash=1))
    with pytest.raises(UnknownCodecError):
        api.decompress(_restamp(data, codec_id="future-codec"))


def test_info_reports_measured_bitrate():
    x = tone(16000, seconds=2.0)
    data = neurocodec.load("pcm").compress(x, 16000)
    inf = api.info(data)
    assert inf.codec == "pcm" and inf.channels == 1 and inf.num_samples == 32000
    assert inf.measured_kbps == pytest.approx(8 * len(data) / 2.0 / 1000)
    assert 256 <= inf.measured_kbps < 257
