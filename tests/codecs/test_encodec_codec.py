"""EnCodec as a codec: bitstream round trips with every coder, streaming push/pull API = whole
file (same bytes, same audio), bitrate rules, bad payloads rejected, checkpoints round-trip."""

import copy
import dataclasses
import hashlib

import numpy as np
import pytest
import torch

from neurocodec.codecs.encodec import EncodecCodec, EncodecConfig
from neurocodec.codecs.encodec_stream import StreamDecoder, StreamEncoder
from neurocodec.errors import BitrateError, CorruptStreamError, WeightsError

# 64-entry codebooks: 6 bits x 75 frames/s = 0.45 kbps per codebook
TINY = EncodecConfig(n_filters=4, dimension=16, lstm_layers=1, n_q=8, bins=64, bandwidths=(0.9, 1.8, 3.6),
                     default_kbps=1.8, pad_mode="constant", frames_per_chunk=10, lm_n_q=8, lm_dim=16,
                     lm_layers=2, lm_heads=2, lm_ff=32)


def _signal(seconds=1.3, seed=0, sr=24000):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    x = 0.3 * np.sin(2 * np.pi * 220 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t)) + 0.05 * rng.standard_normal(t.size)
    return x.astype(np.float32)[None]


@pytest.fixture(scope="module")
def codec():
    torch.manual_seed(0)
    m = EncodecCodec(TINY)
    m.net.train()
    with torch.no_grad():
        batch = torch.from_numpy(np.stack([_signal(0.5, seed=s) for s in range(4)]))
        for _ in range(3):  # k-means initialisation and EMA updates on real latents
            m.net(batch, 8)
        for p in m.lm.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    m.eval()
    m.fit_entropy_coder([_signal(2.0, seed=5)])
    return m


def _compress(codec, x, kbps, coder):
    old = codec.config
    object.__setattr__(codec, "config", EncodecConfig(**{**old.__dict__, "coder": coder}))
    try:
        return codec.compress(x, kbps)
    finally:
        object.__setattr__(codec, "config", old)


@pytest.mark.parametrize("coder", ["uniform", "static", "lm"])
def test_round_trip_with_every_coder(codec, coder):
    x = _signal()
    enc = _compress(codec, x, 1.8, coder)
    assert enc.chunks[0][0] == {"uniform": 0, "static": 1, "lm": 2}[coder]
    y = codec.decompress(enc.chunks, 1, x.shape[1], 1.8)
    codes = codec.encode_codes(x[0], 4)
    ref = codec.decode_codes(codes)[:x.shape[1]]
    np.testing.assert_array_equal(y[0], ref)
    frames = codes.shape[1]
    assert frames == int(np.ceil(x.shape[1] / 320))
    if coder == "uniform":  # 6 bits per code, range coded in 32-bit words per chunk
        assert abs(enc.num_bytes * 8 - frames * 4 * 6) < 32 * 2 * len(enc.chunks) + 8 * 8 * len(enc.chunks)


def test_more_codebooks_reduce_the_error(codec):
    x = _signal()
    errs = []
    for kbps in (0.9, 1.8, 3.6):
        enc = codec.compress(x, kbps)
        y = codec.decompress(enc.chunks, 1, x.shape[1], kbps)
        codes = codec.encode_codes(x[0], codec.n_q_for(kbps))
        z = codec.net.encoder(torch.from_numpy(x)[None])
        errs.append(float((codec.net.quantizer.decode(torch.from_numpy(codes)[:, None]) - z).pow(2).mean().detach()))
        assert y.shape == x.shape and np.isfinite(y).all()
    assert errs[0] > errs[1] > errs[2]


@pytest.mark.parametrize("block_frames", [0, 1, 3])  # one payload chunk (default), the paper's 320 samples, 3 frames
def test_stream_api_gives_the_whole_file_bytes_and_audio(codec, block_frames):
    codec = copy.copy(codec)
    codec.config = dataclasses.replace(codec.config, block_frames=block_frames)
    assert codec.block_samples == 320 * (block_frames or 10)
    x = _signal(1.7, seed=3)
    whole = codec.compress(x, 1.8)
    enc = StreamEncoder(codec, 1, 1.8)
    chunks, pos = [], 0
    rng = np.random.default_rng(0)
    while pos < x.shape[1]:
        n = int(rng.integers(1, 900))
        chunks += enc.push(x[:, pos:pos + n])
        pos += n
    chunks += enc.finish()
    assert chunks == whole.chunks
    dec = StreamDecoder(codec, 1, 1.8)
    parts = [dec.push(c) for c in chunks]
    assert all(p.shape[1] == 320 * 10 for p in parts[:-1])  # 320 samples per frame
    audio = np.concatenate(parts + [dec.finish()], axis=1)[:, :x.shape[1]]
    np.testing.assert_array_equal(audio, codec.decompress(whole.chunks, 1, x.shape[1], 1.8))


def test_the_encoder_block_is_not_part_of_the_config_hash(codec):
    other = copy.copy(codec)
    other.config = dataclasses.replace(codec.config, block_frames=1)
    assert other.config_hash() == codec.config_hash()
    assert "block_frames" not in codec.config_dict()


def test_stereo_splits_the_rate(codec):
    x = np.concatenate([_signal(0.5), _signal(0.5, seed=9)])
    enc = codec.compress(x, 3.6)  # 1.8 per channel: 4 codebooks each
    assert enc.chunks[0][1] == 4
    y = codec.decompress(enc.chunks, 2, x.shape[1], 3.6)
    assert y.shape == x.shape
    with pytest.raises(BitrateError):
        codec.compress(x, 0.9)
    with pytest.raises(BitrateError):
        codec.compress(_signal(0.2), 5.0)


def test_bad_payloads_are_rejected(codec):
    x = _signal(0.5)
    enc = codec.compress(x, 1.8)
    good = enc.chunks[0]
    bad = [good[:3], good[:-1], good + b"\0\0\0\0", bytes([7]) + good[1:], good[:1] + bytes([9]) + good[2:],
           good[:2] + b"\xff\xff" + good[4:]]
    for b in bad:
        with pytest.raises(CorruptStreamError):
            codec.decompress([b], 1, x.shape[1], 1.8)
    with pytest.raises(CorruptStreamError):  # more frames than the header's length implies
        codec.decompress(enc.chunks + enc.chunks, 1, x.shape[1], 1.8)
    mixed = _compress(codec, x, 1.8, "static").chunks
    with pytest.raises(CorruptStreamError):
        codec.decompress(_compress(codec, _signal(1.0), 1.8, "lm").chunks[:1] + mixed[1:], 1, 24000, 1.8)


def test_checkpoint_round_trip(codec, tmp_path):
    p = tmp_path / "model.safetensors"
    codec.save_pretrained(p)
    m = EncodecCodec.from_pretrained(p)
    x = _signal(0.6)
    assert m.compress(x, 1.8).chunks == codec.compress(x, 1.8).chunks
    assert m.config_hash() == codec.config_hash()
    p.write_bytes(b"nonsense")
    with pytest.raises(WeightsError):
        EncodecCodec.from_pretrained(p)


@pytest.mark.parametrize("threads", [1, pytest.param(2, marks=pytest.mark.slow)])
def test_golden_bitstream(codec, threads):
    torch.set_num_threads(threads)  # the autouse fixture restores the count
    enc = codec.compress(_signal(1.0, seed=11), 1.8)
    md5 = hashlib.md5(b"".join(enc.chunks)).hexdigest()
    assert md5 == GOLDEN, md5


GOLDEN = "6ba4384346b91d2a91417caacae395f8"
