"""Delay estimation and alignment."""

from __future__ import annotations

import numpy as np
import pytest

from neurocodec.audio import read_audio
from neurocodec.errors import AudioError
from neurocodec.eval.align import Aligned, align, find_delay


@pytest.fixture
def speech(speech_path):
    audio, sr = read_audio(speech_path)
    assert sr == 16000
    return audio[0].astype(np.float64), sr


def delayed(x: np.ndarray, d: int) -> np.ndarray:
    """``x`` delayed by ``d`` samples (advanced when negative), same length, zero-filled."""
    if d >= 0:
        return np.concatenate([np.zeros(d), x[:x.size - d]])
    return np.concatenate([x[-d:], np.zeros(-d)])


@pytest.mark.parametrize("d", [0, 1, 37, 312, 4000, -1, -53, -2711])
def test_known_delay_recovered_exactly_on_speech(speech, d):
    x, sr = speech
    assert find_delay(x, delayed(x, d), sr) == d


def test_delay_with_codec_like_degradation(speech):
    """Low-pass filtering, gain and noise do not move the correlation peak."""
    from scipy import signal

    x, sr = speech
    b, a = signal.butter(6, 3400 / (sr / 2))
    y = 0.7 * signal.lfilter(b, a, x)  # causal filter: adds its own group delay of a few samples
    y = y + 0.01 * np.random.default_rng(0).standard_normal(y.size)
    d0 = find_delay(x, y, sr)
    assert 0 <= d0 <= 5
    assert find_delay(x, delayed(y, 401), sr) == d0 + 401
    # decoded longer than the reference (codec padding at the end)
    assert find_delay(x, np.concatenate([delayed(y, 120), np.zeros(999)]), sr) == d0 + 120


def test_delay_outside_search_window_is_not_found(speech):
    x, sr = speech
    d = find_delay(x, delayed(x, 1200), sr, max_delay_s=0.05)  # 1200 > 800 samples
    assert abs(d) <= 800
    assert find_delay(x, delayed(x, 1200), sr, max_delay_s=0.1) == 1200


def test_silent_signal_gives_zero_delay():
    assert find_delay(np.zeros(1000), np.random.default_rng(0).standard_normal(1000), 16000) == 0


def test_align_positive_delay_trims_to_common_span(speech):
    x, sr = speech
    y = np.concatenate([np.zeros(250), x])  # late and longer
    a = align(x, y, sr)
    assert isinstance(a, Aligned)
    assert a.delay_samples == 250 and a.delay_s == pytest.approx(250 / sr)
    assert a.ref.size == a.deg.size == x.size
    np.testing.assert_array_equal(a.ref, a.deg)


def test_align_negative_delay(speech):
    x, sr = speech
    y = x[300:]  # early (the decoder dropped its first 300 samples)
    a = align(x, y, sr)
    assert a.delay_samples == -300
    assert a.ref.size == a.deg.size == x.size - 300
    np.testing.assert_array_equal(a.ref, a.deg)


def test_align_accepts_row_vectors_and_float32(speech):
    x, sr = speech
    a = align(x[None, :].astype(np.float32), delayed(x, 10)[None, :].astype(np.float32), sr)
    assert a.delay_samples == 10 and a.ref.ndim == 1 and a.ref.dtype == np.float64


def test_integer_pcm_is_scaled_to_full_scale(speech):
    x, sr = speech
    pcm = np.round(x * 32767).astype(np.int16)
    a = align(pcm, pcm, sr)
    assert np.max(np.abs(a.ref)) <= 1.0
    np.testing.assert_allclose(a.ref, pcm / 32768.0)


@pytest.mark.parametrize("ref,deg,match", [
    (np.zeros(0), np.ones(10), "empty"),
    (np.ones((2, 100)), np.ones(100), "mono"),
    (np.array([0.0, np.nan, 1.0]), np.ones(3), "NaN"),
    (np.array(["a", "b"]), np.ones(2), "numeric"),
])
def test_bad_input_raises_audio_error(ref, deg, match):
    with pytest.raises(AudioError, match=match):
        align(ref, deg, 16000)


def test_bad_parameters_raise():
    with pytest.raises(AudioError, match="sample rate"):
        find_delay(np.ones(10), np.ones(10), 0)
    with pytest.raises(AudioError, match="max_delay_s"):
        find_delay(np.ones(10), np.ones(10), 16000, max_delay_s=-1)
