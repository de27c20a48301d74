"""Mixing at a target SNR, gain, noise colours and room reverberation (encodec2022 §4.1)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import welch

from neurocodec.data import mixing
from neurocodec.data.mixing import (Room, apply_rir, colored_noise, fit_to, mix, normalize_rms, random_gain,
                                    rms, scale_to_snr, snr_db)
from neurocodec.errors import UserError

SR = 16000


def _speechlike(n, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n) / SR
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)
    return (env * (np.sin(2 * np.pi * 220 * t) + 0.3 * rng.standard_normal(n))).astype(np.float32)


@pytest.mark.parametrize("target", [-5.0, 0.0, 7.5, 20.0])
def test_scale_to_snr_hits_the_target(target):
    s = _speechlike(SR)
    n = np.random.default_rng(1).standard_normal(SR).astype(np.float32)
    assert snr_db(s, scale_to_snr(s, n, target)) == pytest.approx(target, abs=1e-3)


@pytest.mark.parametrize("target", [-3.0, 10.0])
def test_mixture_components_are_at_the_drawn_snr(target):
    """Solve y = a*speech + b*noise (exact without reverb) and measure the SNR of the parts."""
    s = _speechlike(2 * SR)
    n = colored_noise(2 * SR, "pink", np.random.default_rng(2))
    res = mix(s, n, target, np.random.default_rng(3), SR, reverb_probability=0.0)
    assert res.rt60 is None and res.snr_db == target
    basis = np.stack([normalize_rms(s), n], axis=1).astype(np.float64)
    (a, b), *_ = np.linalg.lstsq(basis, res.audio.astype(np.float64), rcond=None)
    assert np.allclose(basis @ [a, b], res.audio, atol=1e-5)
    assert snr_db(a * basis[:, 0], b * basis[:, 1]) == pytest.approx(target, abs=0.01)
    assert np.max(np.abs(res.audio)) <= mixing.PEAK_LIMIT + 1e-6


def test_random_gain_stays_in_range_and_never_clips():
    rng = np.random.default_rng(0)
    x = normalize_rms(_speechlike(SR))
    for _ in range(50):
        y, g = random_gain(x, rng)
        assert -10.0 <= g <= 6.0
        assert np.max(np.abs(y)) <= mixing.PEAK_LIMIT + 1e-6
        assert rms(y) == pytest.approx(rms(x) * 10 ** (g / 20), rel=1e-4)
    loud = np.full(100, 0.9, dtype=np.float32)
    y, g = random_gain(loud, np.random.default_rng(1), (5.0, 6.0))
    assert g == pytest.approx(20 * np.log10(mixing.PEAK_LIMIT / 0.9)) and np.max(np.abs(y)) == pytest.approx(mixing.PEAK_LIMIT, rel=1e-4)


def test_normalize_rms_sets_level_and_limits_peak():
    x = _speechlike(SR) * 0.01
    assert 20 * np.log10(rms(normalize_rms(x, -20.0))) == pytest.approx(-20.0, abs=0.01)
    spiky = np.zeros(1000, dtype=np.float32)
    spiky[10] = 1.0
    assert np.max(np.abs(normalize_rms(spiky))) == pytest.approx(mixing.PEAK_LIMIT, rel=1e-5)
    assert not np.any(normalize_rms(np.zeros(10, dtype=np.float32)))


@pytest.mark.parametrize("color,slope", [("white", 0.0), ("pink", -10.0), ("brown", -20.0)])
def test_noise_colours_have_their_spectral_slope(color, slope):
    x = colored_noise(8 * SR, color, np.random.default_rng(0))
    assert rms(x) == pytest.approx(1.0, rel=1e-3)
    f, p = welch(x, SR, nperseg=4096)
    band = (f >= 100) & (f <= 4000)
    fit = np.polyfit(np.log10(f[band]), 10 * np.log10(p[band]), 1)[0]  # dB per decade
    assert fit == pytest.approx(slope, abs=2.0)
    with pytest.raises(UserError):
        colored_noise(10, "purple", np.random.default_rng(0))


def test_fit_to_tiles_short_and_crops_long():
    rng = np.random.default_rng(0)
    short = np.arange(5, dtype=np.float32)
    y = fit_to(short, 12, rng)
    assert len(y) == 12 and set(y.tolist()) <= set(short.tolist())
    long = np.arange(100, dtype=np.float32)
    y = fit_to(long, 10, rng)
    assert np.all(np.diff(y) == 1)


def test_scale_to_snr_errors():
    with pytest.raises(UserError):
        scale_to_snr(np.ones(4), np.ones(5), 0.0)
    with pytest.raises(UserError):
        scale_to_snr(np.ones(4), np.zeros(4), 0.0)


def test_apply_rir_with_a_delayed_impulse_is_identity():
    x = _speechlike(4000)
    h = np.zeros(300, dtype=np.float32)
    h[37] = 1.0
    assert np.allclose(apply_rir(x, h), x, atol=1e-6)


def test_room_rir_has_the_requested_reverberation_time():
    pra = pytest.importorskip("pyroomacoustics")
    rng = np.random.default_rng(4)
    room = Room.draw(rng, (0.5, 0.5))
    assert room.rt60 == 0.5
    assert np.linalg.norm(np.subtract(room.source, room.mic)) >= 1.0
    h = mixing.room_impulse_response(room, SR)
    assert np.max(np.abs(h)) == pytest.approx(1.0)
    measured = pra.experimental.measure_rt60(h, SR, decay_db=30)
    assert 0.35 <= measured <= 0.75
    res = mix(_speechlike(SR), colored_noise(SR, "white", rng), 10.0, rng, SR, reverb_probability=1.0)
    assert res.rt60 is not None and 0.3 <= res.rt60 <= 1.3
