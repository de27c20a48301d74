"""byun2023 perceptual coder (FEM and HPM): framing, training step, real bitstreams, rate
estimate vs file size, weights round trip, bad streams."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

import neurocodec
from neurocodec import audio
from neurocodec.codecs.perceptual import (PerceptualFemCodec, PerceptualHpmCodec, frame_signal, overlap_add,
                                          perceptual_config)
from neurocodec.errors import CorruptStreamError, WeightsError

ROOT = Path(__file__).resolve().parents[2]


def tiny(cls, seed=0, gain=8.0, kbps=16, rate_control=False):
    """A small seeded model whose latent has a useful spread (untrained weights); the file rate
    control is off unless asked for (these tests check the coder at one quantizer scale)."""
    torch.manual_seed(seed)
    cfg = perceptual_config(kbps, cls.density, channels=8, bottleneck_channels=4, hyper_channels=4,
                            hyper_latent=2, frames_per_chunk=16, file_rate_control=rate_control)
    m = cls(cfg)
    with torch.no_grad():
        m.encoder[-1].weight.mul_(gain)
    return m.eval()


@pytest.fixture(scope="module")
def speech():
    wav, sr = audio.read_audio(ROOT / "examples" / "speech.flac")
    assert sr == 16000
    return wav[:, : 4 * sr]


def test_framing_is_perfect_reconstruction():
    x = torch.randn(2, 3001, dtype=torch.float64)
    fr = frame_signal(x, 512, 32)
    assert fr.shape == (2, 7, 512)  # ceil((3001 + 32) / 480)
    assert torch.allclose(overlap_add(fr, 3001, 32), x, atol=1e-12)


def test_paper_size_model():
    m = PerceptualHpmCodec(perceptual_config(16, "hpm"))
    n_hyper = sum(p.numel() for p in m.hyper.parameters())
    assert 2.3e6 < m.num_parameters() - n_hyper < 2.9e6  # paper: 2.35M (our layer choices: 2.76M)
    assert 0.1e6 < n_hyper < 0.25e6  # paper: 0.18M
    z = m.encode_frames(torch.zeros(3, 512))
    assert z.shape == (3, 1, 256)  # latent T/2 per frame


@pytest.mark.parametrize("cls", [PerceptualFemCodec, PerceptualHpmCodec])
def test_training_step_and_rate_steering(cls):
    m = tiny(cls).train()
    assert [p.name for p in m.phases(100)] == ["reconstruct", "quantize"]
    assert sum(p.steps for p in m.phases(100)) == 100
    batch = 0.1 * torch.randn(4, 1, 1024)
    m.set_phase("reconstruct")
    out = m.training_step(batch, 0)
    assert float(out["rate/estimated_kbps"]) == 0.0
    m.set_phase("quantize")
    w0 = float(m.rate_weight)
    out = m.training_step(batch, 1)
    out["loss"].backward()
    assert torch.isfinite(out["loss"]) and float(out["rate/estimated_kbps"]) > 16  # far above target
    assert float(m.rate_weight) > w0  # steered up
    assert all(p.grad is not None for p in m.encoder.parameters())


@pytest.mark.parametrize("cls", [PerceptualFemCodec, PerceptualHpmCodec])
def test_round_trip_matches_forward_and_estimated_rate(cls, speech):
    m = tiny(cls)
    enc = m.compress(speech, 16)
    y = m.decompress(enc.chunks, enc.num_channels, enc.num_samples, 16)
    assert y.shape == speech.shape and y.dtype == np.float32
    with torch.no_grad():
        r = m(torch.from_numpy(speech)[None])
    assert np.abs(r.audio[0].numpy() - y).max() < 1e-5  # the decoder sees exactly the coded latents
    actual = 8 * enc.num_bytes
    est = float(r.bits)
    assert abs(actual / est - 1) < 0.01, (actual, est)  # byun2023 §3.3: estimated = actual rate
    assert est > 30000  # a meaningful rate (not only range-coder words)
    if cls is PerceptualHpmCodec:
        assert float(r.extras["side_bits"]) > 0


@pytest.mark.parametrize("cls", [PerceptualFemCodec, PerceptualHpmCodec])
def test_short_silent_stereo_and_deterministic(cls):
    m = tiny(cls)
    for x in (np.zeros((1, 1), np.float32), np.zeros((2, 700), np.float32),
              (0.3 * np.random.default_rng(0).standard_normal((2, 2000))).astype(np.float32)):
        total = 16 * x.shape[0]  # --bitrate is the total over channels
        enc = m.compress(x, total)
        assert len(enc.chunks) == x.shape[0]
        y = m.decompress(enc.chunks, enc.num_channels, enc.num_samples, total)
        assert y.shape == x.shape and np.isfinite(y).all()
        assert m.compress(x, total).chunks == enc.chunks


@pytest.mark.parametrize("cls", [PerceptualFemCodec, PerceptualHpmCodec])
def test_bad_streams_are_rejected(cls, speech):
    m = tiny(cls)
    x = speech[:, :8000]
    enc = m.compress(x, 16)
    args = (enc.num_channels, enc.num_samples, 16)
    with pytest.raises(CorruptStreamError):
        m.decompress(enc.chunks + [b""], *args)  # wrong chunk count
    with pytest.raises(CorruptStreamError):
        m.decompress([enc.chunks[0][:-2]], *args)  # neither an index byte and whole words nor whole words
    with pytest.raises(CorruptStreamError):
        m.decompress([enc.chunks[0] + b"\0\0\0\1"], *args)  # data left over
    with pytest.raises(CorruptStreamError):
        m.decompress([b""], *args)  # nothing where symbols must be


@pytest.mark.parametrize("cls", [PerceptualFemCodec, PerceptualHpmCodec])
def test_weights_round_trip_and_mismatch(cls, tmp_path, speech):
    m = tiny(cls)
    path = tmp_path / "model.safetensors"
    m.save_pretrained(path)
    m2 = cls.from_pretrained(path)
    x = speech[:, :16000]
    assert m2.compress(x, 16).chunks == m.compress(x, 16).chunks
    assert m2.config_hash() == m.config_hash()
    other = PerceptualHpmCodec if cls is PerceptualFemCodec else PerceptualFemCodec
    with pytest.raises(WeightsError):
        other.from_pretrained(path)
    with pytest.raises(WeightsError):
        cls.from_pretrained(tmp_path / "missing.safetensors")


def test_golden_bitstream_of_seeded_models(speech, md5_per_thread_count):
    """Bitstreams of seeded untrained tiny models (float64 hyper-decoder, integer tables)."""
    x = speech[:, :16000]
    for cls in (PerceptualFemCodec, PerceptualHpmCodec):
        m = tiny(cls)
        d = md5_per_thread_count(lambda: b"".join(m.compress(x, 16).chunks))
        assert d[0] == d[1]


def test_registered_families(tmp_path):
    for cid in ("perceptual-fem", "perceptual-hpm"):
        fam = neurocodec.codecs.registry.create(cid)
        assert set(fam.bitrates.choices) <= {9.0, 13.0, 16.0, 20.0, 24.0}
        assert all(fam.weights_path(k).is_file() for k in fam.bitrates.choices)  # only shipped points
        empty = neurocodec.codecs.registry.get_entry(cid).create(weights_dir=tmp_path)
        assert empty.bitrates.choices == (9.0, 13.0, 16.0, 20.0, 24.0)
        with pytest.raises(WeightsError):
            empty.model_for(16)


@pytest.mark.parametrize("cls", [PerceptualFemCodec, PerceptualHpmCodec])
def test_code_scale_moves_the_rate_and_keeps_the_estimate(cls, speech):
    x = speech[:, :32000]
    m = tiny(cls, gain=3.0)
    rates = []
    for g in (1.0, 2.0):
        m.with_code_scale(g)
        enc = m.compress(x, 16)
        with torch.no_grad():
            est = float(m(torch.from_numpy(x)[None]).bits)
        assert abs(8 * enc.num_bytes / est - 1) < 0.01
        y = m.decompress(enc.chunks, enc.num_channels, enc.num_samples, 16)
        assert np.isfinite(y).all()
        rates.append(8 * enc.num_bytes)
    assert rates[1] > 1.1 * rates[0]  # a finer step costs more bits
