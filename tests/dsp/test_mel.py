"""Mel scale, filterbank and log-mel spectrogram (numpy and torch)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neurocodec.dsp.mel import MelSpectrogram, hz_to_mel, log_mel_spectrogram, mel_filterbank, mel_to_hz
from neurocodec.errors import UserError


def test_htk_scale_known_values():
    # 2595 * log10(1 + 1000/700) = 999.9855...: the HTK scale puts 1 kHz at ~1000 mel.
    assert hz_to_mel(1000.0, htk=True) == pytest.approx(1000.0, abs=0.02)
    assert hz_to_mel(0.0, htk=True) == 0.0
    assert hz_to_mel(700.0, htk=True) == pytest.approx(2595.0 * np.log10(2.0))


def test_slaney_scale_known_values():
    # linear part: 200/3 Hz per mel; 1 kHz = 15 mel; log part: 27 mel per factor 6.4.
    assert hz_to_mel(500.0) == pytest.approx(7.5)
    assert hz_to_mel(1000.0) == pytest.approx(15.0)
    assert hz_to_mel(6400.0) == pytest.approx(42.0)
    assert mel_to_hz(42.0) == pytest.approx(6400.0)


@pytest.mark.parametrize("htk", [False, True])
def test_mel_to_hz_inverts_hz_to_mel(htk):
    f = np.array([0.0, 20.0, 440.0, 999.0, 1000.0, 1001.0, 4000.0, 22050.0])
    np.testing.assert_allclose(mel_to_hz(hz_to_mel(f, htk), htk), f, rtol=1e-12, atol=1e-9)


def test_filterbank_shape_and_triangles():
    fb = mel_filterbank(16000, 512, 40)
    assert fb.shape == (40, 257) and fb.dtype == np.float32
    assert np.all(fb >= 0)
    # each row is a single contiguous bump (rises then falls)
    for row in fb:
        nz = np.flatnonzero(row)
        assert nz.size > 0 and np.all(np.diff(nz) == 1)
        peak = int(np.argmax(row))
        assert np.all(np.diff(row[nz[0]:peak + 1]) >= 0) and np.all(np.diff(row[peak:nz[-1] + 1]) <= 0)


@pytest.mark.parametrize("htk", [False, True])
def test_unnormalized_filters_partition_unity(htk):
    """Without area normalisation neighbouring triangles sum to 1 between the first and last centre."""
    sr, n_fft, n_mels = 16000, 1024, 40
    fb = mel_filterbank(sr, n_fft, n_mels, htk=htk, norm=None)
    corners = mel_to_hz(np.linspace(0, hz_to_mel(sr / 2, htk), n_mels + 2), htk)
    freqs = np.linspace(0, sr / 2, n_fft // 2 + 1)
    inside = (freqs >= corners[1]) & (freqs <= corners[-2])
    np.testing.assert_allclose(fb.sum(axis=0)[inside], 1.0, atol=1e-5)
    assert fb.max() <= 1.0 + 1e-6


def test_slaney_norm_gives_equal_area():
    """Slaney normalisation: each triangle has area 1 (in Hz) up to bin discretisation."""
    sr, n_fft = 16000, 8192
    fb = mel_filterbank(sr, n_fft, 20, fmin=100.0, fmax=7000.0).astype(np.float64)
    areas = fb.sum(axis=1) * (sr / n_fft)
    np.testing.assert_allclose(areas, 1.0, rtol=0.02)


def test_filterbank_respects_fmin_fmax():
    sr, n_fft = 16000, 512
    fb = mel_filterbank(sr, n_fft, 20, fmin=300.0, fmax=3400.0)
    freqs = np.linspace(0, sr / 2, n_fft // 2 + 1)
    active = freqs[fb.sum(axis=0) > 0]
    assert active.min() > 300.0 and active.max() < 3400.0


def test_filterbank_matches_librosa_when_available():
    librosa = pytest.importorskip("librosa")
    for htk in (False, True):
        ours = mel_filterbank(22050, 1024, 80, fmin=30.0, fmax=9000.0, htk=htk)
        ref = librosa.filters.mel(sr=22050, n_fft=1024, n_mels=80, fmin=30.0, fmax=9000.0, htk=htk)
        np.testing.assert_allclose(ours, ref, atol=1e-7)


@pytest.mark.parametrize("kwargs", [
    dict(sample_rate=16000, n_fft=512, n_mels=0),
    dict(sample_rate=16000, n_fft=512, n_mels=40, fmax=9000.0),
    dict(sample_rate=16000, n_fft=512, n_mels=40, fmin=5000.0, fmax=4000.0),
    dict(sample_rate=16000, n_fft=512, n_mels=40, norm="area"),
])
def test_filterbank_rejects_bad_parameters(kwargs):
    with pytest.raises(UserError):
        mel_filterbank(**kwargs)


def test_sine_energy_lands_in_the_right_band():
    sr, f0 = 16000, 1000.0
    x = np.sin(2 * np.pi * f0 * np.arange(sr) / sr)
    mel = log_mel_spectrogram(x, sr, 1024, n_mels=40, log=False)
    band = int(np.argmax(mel.mean(axis=-1)))
    centres = mel_to_hz(np.linspace(0, hz_to_mel(sr / 2), 42))[1:-1]
    assert abs(centres[band] - f0) < (centres[band + 1] - centres[band - 1]) / 2


def test_normalized_stft_scale_of_a_sine():
    """With the window-L2 normalisation a unit sine peaks at sqrt(sum(w)^2 / (4 sum(w^2))) in its bin."""
    sr, n_fft = 16000, 512
    k = 32  # exactly on a bin: 1000 Hz
    x = np.sin(2 * np.pi * k * np.arange(sr) / n_fft)
    w = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    expected = w.sum() / 2 / np.sqrt((w ** 2).sum())
    # a filterbank of a single un-normalised filter peaking at the sine's bin reads its magnitude
    mel = log_mel_spectrogram(x, sr, n_fft, log=False, n_mels=64, norm=None)
    assert mel.max() == pytest.approx(expected, rel=0.05)


def test_log_floor_for_silence():
    mel = log_mel_spectrogram(np.zeros(4000), 16000, 256, floor=1e-5)
    np.testing.assert_array_equal(mel, np.float32(-5.0))


def test_frame_count_and_batch_shape():
    x = np.random.default_rng(0).standard_normal((3, 2, 8000))
    mel = log_mel_spectrogram(x, 16000, 512, hop_length=128, n_mels=32)
    assert mel.shape == (3, 2, 32, 8000 // 128 + 1)


@pytest.mark.parametrize("n_fft,win_length,power", [(512, None, 1.0), (1024, 800, 2.0), (64, None, 1.0)])
def test_torch_module_matches_numpy(n_fft, win_length, power):
    x = np.random.default_rng(1).standard_normal((2, 6000))
    ref = log_mel_spectrogram(x, 24000, n_fft, win_length=win_length, n_mels=40, power=power)
    module = MelSpectrogram(24000, n_fft, win_length=win_length, n_mels=40, power=power).double()
    out = module(torch.tensor(x)).numpy()
    assert out.shape == ref.shape
    np.testing.assert_allclose(out, ref, atol=1e-5)


def test_torch_module_short_input_and_gradient():
    module = MelSpectrogram(16000, 2048, n_mels=64)
    x = torch.randn(1, 1, 500, requires_grad=True)  # shorter than half a window: zero padding
    y = module(x)
    assert y.shape == (1, 1, 64, 500 // 512 + 1)
    ref = log_mel_spectrogram(x.detach().numpy(), 16000, 2048, n_mels=64)
    np.testing.assert_allclose(y.detach().numpy(), ref, atol=1e-4)
    y.mean().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
