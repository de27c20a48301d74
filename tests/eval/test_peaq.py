"""PEAQ basic version (ITU-R BS.1387-1) and the 2f-model: known values, reference values
from GstPEAQ, monotonicity, data boundaries and error paths."""

from __future__ import annotations

import math
import shutil
import subprocess

import numpy as np
import pytest
import scipy.signal as ss
import soundfile as sf

from neurocodec.errors import AudioError
from neurocodec.eval.peaq import MOV_NAMES, PeaqResult, peaq, peaq_odg, twof, twof_model
from neurocodec.eval.peaq.averaging import data_boundary, frame_range, windowed_average
from neurocodec.eval.peaq.ear_model import (
    FRAME_SIZE, bark_to_hz, critical_bands, ear_model, frame_signal, full_scale_norm, hz_to_bark,
    internal_noise, outer_middle_ear_db, spread_frequency,
)
from neurocodec.eval.peaq.neural_net import A_MAX, A_MIN, distortion_index, odg_from_di
from neurocodec.eval.peaq.twof import twof_from_movs

SR = 48000


def wideband_item(seconds: float = 2.0, seed: int = 1234) -> np.ndarray:
    """Deterministic 48 kHz test item: an amplitude-modulated harmonic complex on 220 Hz
    (partials up to 18.9 kHz) plus noise low-passed at 18 kHz, peak about 0.22."""
    t = np.arange(int(seconds * SR)) / SR
    rng = np.random.default_rng(seed)
    phases = rng.uniform(0, 2 * np.pi, 90)
    tones = sum(0.04 / np.sqrt(h) * np.sin(2 * np.pi * 220 * h * t + phases[h]) for h in range(1, 87))
    envelope = 0.6 + 0.4 * np.sin(2 * np.pi * 1.3 * t)
    sos = ss.butter(10, 18000 / (SR / 2), output="sos")
    noise = ss.sosfilt(sos, 0.02 * rng.standard_normal(len(t)))
    return (tones * envelope + noise).astype(np.float32)


def add_noise(x: np.ndarray, snr_db: float, seed: int) -> np.ndarray:
    n = np.random.default_rng(seed).standard_normal(len(x))
    n *= np.sqrt(np.mean(x.astype(np.float64) ** 2) / np.mean(n ** 2)) * 10 ** (-snr_db / 20)
    return (x + n).astype(np.float32)


def lowpass(x: np.ndarray, cutoff: float) -> np.ndarray:
    sos = ss.butter(8, cutoff / (SR / 2), output="sos")
    return ss.sosfiltfilt(sos, x).astype(np.float32)


def brickwall(x: np.ndarray, cutoff: float) -> np.ndarray:
    spec = np.fft.rfft(x.astype(np.float64))
    spec[np.fft.rfftfreq(len(x), 1 / SR) > cutoff] = 0
    return np.fft.irfft(spec, len(x))


def to_16bit(x: np.ndarray) -> np.ndarray:
    return (np.round(np.asarray(x, np.float64) * 32768) / 32768).astype(np.float32)


def stft_quantise(x: np.ndarray, step: float) -> np.ndarray:
    """Transform-codec-like distortion: uniform quantisation of STFT coefficients (small
    ones become zero, as in an MP3 at a low rate)."""
    _, _, spec = ss.stft(x, nperseg=1152)
    spec = step * np.round(spec.real / step) + 1j * step * np.round(spec.imag / step)
    _, y = ss.istft(spec, nperseg=1152)
    return y[:len(x)].astype(np.float32)


@pytest.fixture(scope="module")
def item() -> np.ndarray:
    return wideband_item()


# --------------------------------------------------------------------------- known values
def test_bark_scale_known_values():
    assert hz_to_bark(650.0) == pytest.approx(7 * math.asinh(1.0))
    assert hz_to_bark(0.0) == 0.0
    f = np.array([80.0, 1000.0, 18000.0])
    np.testing.assert_allclose(bark_to_hz(hz_to_bark(f)), f, rtol=1e-12)


def test_critical_band_table():
    bands = critical_bands()
    assert bands.count == 109
    # first rows of the Recommendation's band table (fl, fc, fu in Hz)
    np.testing.assert_allclose(bands.lower[:2], [80.000, 103.445], atol=1e-3)
    np.testing.assert_allclose(bands.centre[:2], [91.708, 115.216], atol=1e-3)
    np.testing.assert_allclose(bands.upper[:2], [103.445, 127.023], atol=1e-3)
    assert bands.upper[-1] == pytest.approx(18000.0)
    np.testing.assert_allclose(bands.lower[1:], bands.upper[:-1])
    # 0.25 Bark wide except the last, truncated band
    widths = hz_to_bark(bands.upper) - hz_to_bark(bands.lower)
    np.testing.assert_allclose(widths[:-1], 0.25, atol=1e-9)
    assert 0 < widths[-1] <= 0.25


def test_outer_middle_ear_weighting_known_values():
    def w(f_khz):
        return -0.6 * 3.64 * f_khz ** -0.8 + 6.5 * math.exp(-0.6 * (f_khz - 3.3) ** 2) - 1e-3 * f_khz ** 3.6

    f = np.array([100.0, 1000.0, 3300.0, 10000.0])
    np.testing.assert_allclose(outer_middle_ear_db(f), [w(x / 1000) for x in f], rtol=1e-12)
    assert outer_middle_ear_db(1000.0) == pytest.approx(-1.9131, abs=1e-4)
    assert outer_middle_ear_db(3300.0) == pytest.approx(5.5861, abs=1e-4)
    assert outer_middle_ear_db(0.0) == -np.inf
    # resonance of the ear canal: the maximum lies between 3 and 4 kHz
    grid = np.linspace(50, 20000, 4000)
    assert 3000 < grid[np.argmax(outer_middle_ear_db(grid))] < 4000


def test_internal_noise_known_value():
    assert internal_noise(np.array([1000.0]))[0] == pytest.approx(10 ** (0.4 * 0.364))


def test_playback_level_full_scale_sine_is_92_db():
    # Kabal's closed form of Norm: sqrt(8/3) * 0.84971762641205 * (N - 1) / 4
    assert full_scale_norm() == pytest.approx(math.sqrt(8 / 3) * 0.84971762641205 * (FRAME_SIZE - 1) / 4, rel=1e-5)
    n = np.arange(SR)
    sine = np.sin(2 * np.pi * 1019.5 * n / SR)
    out = ear_model(frame_signal(sine, 40))
    peak_db = 10 * np.log10(out.power.max(axis=1))
    assert peak_db.max() == pytest.approx(92.0, abs=0.01)
    assert peak_db.min() > 91.0


def test_spreading_matches_direct_formula():
    """The optimised spreading equals the Recommendation's sums written out directly."""
    bands = critical_bands()
    rng = np.random.default_rng(3)
    pitch = 10 ** rng.uniform(-1, 9, size=(2, bands.count))
    res, z = bands.resolution, bands.count

    def direct(pp):
        level = 10 * np.log10(pp)
        out = np.zeros(z)
        for j in range(z):
            su = 24 + 230 / bands.centre[j] - 0.2 * level[j]  # dB/Bark
            gains = np.array([10 ** (-27 * (j - k) * res / 10) if k < j else 10 ** (-su * (k - j) * res / 10)
                              for k in range(z)])
            out += (pp[j] * gains / gains.sum()) ** 0.4
        return out ** (1 / 0.4)

    norm = direct(np.ones(z))
    expected = np.stack([direct(p) / norm for p in pitch])
    np.testing.assert_allclose(spread_frequency(pitch), expected, rtol=1e-9)


def test_neural_net_at_scaling_minima_and_maxima():
    sig = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    at_min = -0.307594 - 3.817048 * sig(-2.518254) + 4.107138 * sig(0.654841) + 4.629582 * sig(-2.207228)
    assert distortion_index(A_MIN) == pytest.approx(at_min, abs=1e-9)
    col = [sum(c) for c in zip(*[
        (-0.502657, 0.436333, 1.219602), (4.307481, 3.246017, 1.123743), (4.984241, -2.211189, -0.192096),
        (0.051056, -1.762424, 4.331315), (2.321580, 1.789971, -0.754560), (-5.303901, -3.452257, -10.814982),
        (2.730991, -6.111805, 1.519223), (0.624950, -1.331523, -5.955151), (3.102889, 0.871260, -5.922878),
        (-1.051468, -0.939882, -0.142913), (-1.804679, -0.503610, -0.620456)])]
    at_max = (-0.307594 - 3.817048 * sig(-2.518254 + col[0]) + 4.107138 * sig(0.654841 + col[1])
              + 4.629582 * sig(-2.207228 + col[2]))
    assert distortion_index(dict(zip(MOV_NAMES, A_MAX))) == pytest.approx(at_max, abs=1e-9)
    assert odg_from_di(at_min) == pytest.approx(-3.98 + 4.2 * sig(at_min), abs=1e-12)


def test_odg_mapping():
    assert odg_from_di(0.0) == pytest.approx(-1.88)
    assert odg_from_di(50.0) == pytest.approx(0.22)
    assert odg_from_di(-50.0) == pytest.approx(-3.98)
    with pytest.raises(ValueError):
        distortion_index(np.zeros(5))


def test_twof_formula():
    assert twof_from_movs(0.0, 0.0, clip=False) == pytest.approx(56.1345 / (1 + 0.8628 ** 2) + 86.3515)
    assert twof_from_movs(0.0, 0.0) == 100.0
    expected = 56.1345 / (1 + (-0.0282 * 30 - 0.8628) ** 2) - 27.1451 * 2 + 86.3515
    assert twof_from_movs(30.0, 2.0) == pytest.approx(expected)
    assert 0 < expected < 100
    assert twof_from_movs(200.0, 4.0) == 0.0


def test_windowed_average_known_value():
    assert windowed_average(np.full(10, 9.0)) == pytest.approx(9.0)
    x = np.array([1.0, 4.0, 9.0, 16.0])  # one window: mean of sqrt = 2.5
    assert windowed_average(x) == pytest.approx(2.5 ** 2)
    assert windowed_average(np.ones(3)) == 0.0


# --------------------------------------------------------------------- data boundaries
def test_data_boundary_threshold():
    x = np.zeros(10000)
    x[3000:3005] = 40 / 32768  # five samples summing to exactly 200: not above
    assert data_boundary(x) is None
    x[3000:3005] = 41 / 32768
    assert data_boundary(x) == (3000, 3004)
    x[7000] = 0.5  # the end is the last sample of the last loud 5-sample window
    assert data_boundary(x) == (3000, 7004)


def test_frame_range_follows_boundaries(item):
    x = np.concatenate([np.zeros(5000, np.float32), item, np.zeros(9000, np.float32)])
    rng_ = frame_range(x)
    assert rng_.first == 5000 // 1024
    assert rng_.last == (5000 + len(item) - 1024) // 1024


def test_trailing_silence_does_not_change_result(item):
    deg = add_noise(item, 20, seed=11)
    pad = np.zeros(SR, np.float32)
    a = peaq(item, deg, SR)
    b = peaq(np.concatenate([item, pad]), np.concatenate([deg, pad]), SR)
    assert a.movs == b.movs
    assert a.odg == b.odg


def test_signal_before_data_start_is_ignored(item):
    """A burst in the degraded signal that ends before the first averaged frame leaves
    only decayed filter states behind (frame 46 starts at sample 47104)."""
    silence = np.zeros(SR, np.float32)
    ref = np.concatenate([silence, item])
    clean = peaq(ref, np.concatenate([silence, item]), SR)
    burst = add_noise(np.full(SR, 0.1, np.float32), 0, seed=5)
    burst[SR // 2:] = 0
    burst = peaq(ref, np.concatenate([burst, item]), SR)
    assert clean.odg > 0.1
    assert burst.odg == pytest.approx(clean.odg, abs=0.05)
    assert burst.movs["TotalNMR_B"] == pytest.approx(clean.movs["TotalNMR_B"], abs=1.0)


# ---------------------------------------------------------------- reference values
# GstPEAQ (github.com/HSU-ANT/gstpeaq, commit 0b9315e, basic version, built locally) on the
# same float32 signals written as 48 kHz WAV files: ODG and DI as printed (3 decimals), MOVs
# to 6 decimals.  See docs/peaq.md.
GSTPEAQ = {
    "identical": (0.216, 6.940, [908.44086, 908.44086, -155.608191, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
    "noise30": (0.092, 3.459, [808.967742, 808.967742, -29.202359, 2.65676, 0.0, 0.152437, 2.520072,
                               5.865625, 0.04686, 0.004329, 0.0]),
    "lowpass8k": (-1.273, 0.595, [920.451613, 673.688172, -4.587282, 4.496747, 2.609414, 2.708147,
                                  4.506661, 15.087008, 0.081209, 0.999944, 1.0]),
    "noise10": (-3.114, -1.348, [579.425, 579.425, -9.218091, 19.931642, 1.568745, 0.207481, 18.636204,
                                 59.378744, 0.435262, 0.999682, 0.043011]),
    "quant5": (-3.541, -2.148, [533.153846, 533.153846, -7.965735, 23.896549, 1.656807, 0.256818,
                                22.57126, 80.899923, 0.595081, 0.999944, 0.107527]),
}


def _degraded(item, kind):
    if kind == "identical":
        return item.copy()
    if kind == "noise30":
        return add_noise(item, 30, seed=99)
    if kind == "noise10":
        return add_noise(item, 10, seed=7)
    if kind == "lowpass8k":
        return lowpass(item, 8000)
    return (np.round(item.astype(np.float64) * 16) / 16).astype(np.float32)  # 5-bit quantiser


@pytest.mark.parametrize("kind", sorted(GSTPEAQ))
def test_matches_gstpeaq(item, kind):
    odg, di, movs = GSTPEAQ[kind]
    res = peaq(item, _degraded(item, kind), SR)
    assert list(res.movs) == list(MOV_NAMES)
    np.testing.assert_allclose(list(res.movs.values()), movs, rtol=1e-5, atol=2e-6)
    assert res.di == pytest.approx(di, abs=6e-4)
    assert res.odg == pytest.approx(odg, abs=6e-4)


# ------------------------------------------------------------------- behaviour
def test_identical_signals_score_near_the_top(item):
    res = peaq(item, item, SR)
    assert 0.1 < res.odg < 0.22
    assert res.movs["ADB_B"] == 0 and res.movs["EHS_B"] == 0 and res.movs["AvgModDiff1_B"] == 0
    assert res.twof == 100.0


def test_odg_decreases_with_additive_noise(item):
    results = [peaq(item, add_noise(item, snr, seed=5), SR) for snr in (40, 30, 20, 10)]
    odgs = [r.odg for r in results]
    assert all(a > b for a, b in zip(odgs, odgs[1:])), odgs
    nmr = [r.movs["TotalNMR_B"] for r in results]
    np.testing.assert_allclose(np.diff(nmr), 10.0, atol=0.5)  # NMR follows the noise level
    twofs = [r.twof for r in results]
    assert all(a >= b for a, b in zip(twofs, twofs[1:])) and twofs[-1] < twofs[0], twofs


def test_lowpass_reduces_test_bandwidth_only(item):
    """Brick-wall low-pass of 16-bit signals (as a codec would output): BandwidthTest follows
    the cutoff (23.4375 Hz per bin), BandwidthRef stays put and the ODG drops."""
    ref = to_16bit(item)
    results = [peaq(ref, to_16bit(brickwall(item, fc)), SR) for fc in (16000, 12000, 8000, 4000)]
    bw_test_hz = np.array([r.movs["BandwidthTest_B"] for r in results]) * SR / FRAME_SIZE
    np.testing.assert_allclose(bw_test_hz, [16000, 12000, 8000, 4000], rtol=0.05)
    bw_ref = [r.movs["BandwidthRef_B"] for r in results]
    assert max(bw_ref) - min(bw_ref) < 1.0, bw_ref
    odgs = [r.odg for r in results]
    assert all(a > b for a, b in zip(odgs, odgs[1:])), odgs


def test_odg_decreases_with_coarser_transform_quantisation(item):
    odgs = [peaq(item, stft_quantise(item, step), SR).odg for step in (1e-4, 1e-3, 2e-3, 4e-3)]
    assert all(a > b for a, b in zip(odgs, odgs[1:])), odgs


def _has_lame() -> bool:
    if shutil.which("ffmpeg") is None:
        return False
    out = subprocess.run(["ffmpeg", "-hide_banner", "-encoders"], capture_output=True, text=True).stdout
    return "libmp3lame" in out


@pytest.mark.tools
def test_odg_and_twof_decrease_with_mp3_bitrate(item, tmp_path):
    if not _has_lame():
        pytest.skip("ffmpeg with libmp3lame is not installed (apt-get install ffmpeg)")
    src = tmp_path / "ref.wav"
    sf.write(src, item, SR, subtype="FLOAT")
    results = []
    for kbps in (320, 128, 64, 40):
        enc, dec = tmp_path / f"{kbps}.mp3", tmp_path / f"{kbps}.wav"
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(src), "-c:a", "libmp3lame",
                        "-b:a", f"{kbps}k", str(enc)], check=True)
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(enc), "-c:a", "pcm_f32le",
                        str(dec)], check=True)
        deg, _ = sf.read(dec, dtype="float32")
        results.append(peaq(item, deg, SR))  # ffmpeg decodes MP3 gaplessly: no delay
    odgs, twofs = [r.odg for r in results], [r.twof for r in results]
    assert all(a > b for a, b in zip(odgs, odgs[1:])), odgs
    assert all(a >= b for a, b in zip(twofs, twofs[1:])) and twofs[-1] < 50, twofs


def test_nmr_scales_with_error_amplitude_for_a_pure_tone():
    """For a scaled copy ``g x`` the noise spectrum is ``(1-g)^2`` times the reference's, so
    every band's NMR and hence Total NMR move by ``20 log10`` of the error amplitude."""
    n = np.arange(2 * SR)
    tone = 0.5 * np.sin(2 * np.pi * 1000 * n / SR)
    nmr = [peaq(tone, (1 - e) * tone, SR).movs["TotalNMR_B"] for e in (0.1, 0.01)]
    assert nmr[0] - nmr[1] == pytest.approx(20.0, abs=1e-3)


def test_gain_change_has_no_harmonic_error_structure(item):
    res = peaq(item, item * np.float32(10 ** (-1 / 20)), SR)
    assert res.movs["EHS_B"] < 1e-9
    assert res.movs["ADB_B"] > 0  # but the level difference is detected


def test_input_handling(item):
    item = item[:int(1.25 * SR)]
    deg = add_noise(item, 25, seed=2)
    base = peaq(item, deg, SR)
    stereo = peaq(np.stack([item, item]), np.stack([deg, deg]), SR)
    assert stereo.odg == pytest.approx(base.odg, abs=1e-9)
    longer = peaq(item, np.concatenate([deg, np.ones(500, np.float32)]), SR)  # cut to the shorter
    assert longer.odg == pytest.approx(base.odg, abs=1e-9)
    as_int16 = peaq((item * 32767).astype(np.int16), (deg * 32767).astype(np.int16), SR)
    assert as_int16.odg == pytest.approx(base.odg, abs=0.01)
    assert peaq(item, deg, 48000.0).odg == base.odg
    # other rates are resampled to 48 kHz
    low = peaq(item[::3], deg[::3], 16000)
    assert isinstance(low, PeaqResult) and -4 < low.odg < 0.22


def test_metric_functions_and_twof_model(item):
    item = item[:int(1.25 * SR)]
    deg = lowpass(item, 8000)
    res = peaq(item, deg, SR)
    assert peaq_odg(item, deg, SR) == res.odg
    assert twof(item, deg, SR) == res.twof == twof_model(res) == twof_model(item, deg, SR)
    assert res.twof == pytest.approx(twof_from_movs(res.movs["AvgModDiff1_B"], res.movs["ADB_B"]))
    assert 0 < res.twof < 100


# ------------------------------------------------------------------- error paths
def test_errors(item):
    with pytest.raises(AudioError, match="silent"):
        peaq(np.zeros(SR), item[:SR], SR)
    with pytest.raises(AudioError, match="at least"):
        peaq(item[:SR // 4], item[:SR // 4], SR)
    with pytest.raises(AudioError, match="NaN"):
        peaq(item, np.full_like(item, np.nan), SR)
    with pytest.raises(AudioError, match="empty"):
        peaq(np.zeros(0), item, SR)
    with pytest.raises(AudioError, match="sample rate"):
        peaq(item, item, 0)
    with pytest.raises(AudioError, match="sample rate"):
        peaq(item, item, 44100.5)
    with pytest.raises(AudioError, match="full scale"):
        peaq(item * 32768, item * 32768, SR)
    with pytest.raises(AudioError, match="PeaqResult"):
        twof_model(item)
