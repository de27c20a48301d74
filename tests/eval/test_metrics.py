"""Objective quality metrics: known values, invariances, registry and failure handling."""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
import pytest
from scipy import signal

from neurocodec.audio import read_audio
from neurocodec.errors import AudioError, UserError
from neurocodec.eval import metrics_ext
from neurocodec.eval.metrics import (METRICS, MetricReport, UnknownMetricError, compute_metrics, get_metric,
                                     metric_names)
from neurocodec.eval.metrics_ext import MissingPackageError, pesq_wb, stoi
from neurocodec.eval.signals import MetricWarning
from neurocodec.eval.snr import segmental_snr, si_snr, snr
from neurocodec.eval.spectral import effective_bandwidth, log_spectral_distance, mel_distance

FAST = ["snr", "segsnr", "si_snr", "mel_distance", "lsd", "bandwidth", "pesq_wb", "stoi", "estoi"]


@pytest.fixture(scope="module")
def speech():
    from pathlib import Path

    audio, sr = read_audio(Path(__file__).resolve().parents[2] / "examples" / "speech.flac")
    assert sr == 16000
    return audio[0].astype(np.float64), sr


def noise_at_snr(x: np.ndarray, snr_db: float, seed: int = 0) -> np.ndarray:
    """White Gaussian noise scaled so that ``x`` vs ``x + noise`` has exactly ``snr_db``."""
    n = np.random.default_rng(seed).standard_normal(x.size)
    return n * np.sqrt(np.sum(x ** 2) / np.sum(n ** 2) / 10 ** (snr_db / 10))


def lowpass(x: np.ndarray, fc: float, sr: int) -> np.ndarray:
    return signal.sosfiltfilt(signal.butter(10, fc / (sr / 2), output="sos"), x)


# -- identical signals ------------------------------------------------------------------------
def test_identical_signals_give_ideal_values(speech):
    x, sr = speech
    report = compute_metrics(x, x.copy(), sr, FAST)
    assert isinstance(report, MetricReport)
    v = report.values
    assert report.delay_samples == 0 and report.failures == {}
    assert list(v) == FAST
    assert v["snr"] == math.inf and v["si_snr"] == math.inf
    assert v["segsnr"] == 35.0  # every frame clamped at the upper limit
    assert v["mel_distance"] == 0.0 and v["lsd"] == 0.0
    assert v["pesq_wb"] == pytest.approx(4.64, abs=0.01)  # P.862.2 ceiling
    assert v["stoi"] == pytest.approx(1.0, abs=1e-6) and v["estoi"] == pytest.approx(1.0, abs=1e-6)
    assert v["bandwidth"] == sr / 2  # G.722-decoded speech has content up to Nyquist
    assert set(report.seconds) == set(FAST)


# -- SNR family --------------------------------------------------------------------------------
@pytest.mark.parametrize("target", [0.0, 10.0, 23.5])
def test_white_noise_at_known_snr(speech, target):
    x, sr = speech
    y = x + noise_at_snr(x, target)
    assert snr(x, y, sr) == pytest.approx(target, abs=1e-6)
    assert si_snr(x, y, sr) == pytest.approx(target, abs=0.1)


def test_segmental_snr_of_stationary_signal_equals_snr():
    sr = 16000
    x = np.random.default_rng(1).standard_normal(8 * sr)
    y = x + noise_at_snr(x, 10.0, seed=2)
    assert segmental_snr(x, y, sr) == pytest.approx(10.0, abs=0.1)
    # per-frame clamp: a 60 dB SNR reads as 35 dB, a -30 dB SNR as -10 dB
    assert segmental_snr(x, x + noise_at_snr(x, 60.0), sr) == pytest.approx(35.0)
    assert segmental_snr(x, x + noise_at_snr(x, -30.0), sr) == pytest.approx(-10.0)


def test_segmental_snr_skips_pauses():
    sr = 16000
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.standard_normal(sr), np.zeros(sr)])  # 1 s active, 1 s digital silence
    noise = 0.01 * rng.standard_normal(2 * sr)
    # silent frames would score -10 dB each; skipped, the mean is the active part's ~40 dB -> 35
    assert segmental_snr(x, x + noise, sr) == pytest.approx(35.0)


@pytest.mark.parametrize("gain", [0.5, 0.9, 1.1, 2.0, -1.0])
def test_scaled_signal_changes_snr_but_not_si_snr(speech, gain):
    x, sr = speech
    y = x + noise_at_snr(x, 15.0)
    # SI-SNR is invariant to any gain, even a polarity flip (the projection follows the sign)
    assert si_snr(x, gain * y, sr) == pytest.approx(si_snr(x, y, sr), abs=1e-9)
    # pure gain: error = (1 - g) x, so SNR = -20 log10 |1 - g|
    assert snr(x, gain * x, sr) == pytest.approx(-20 * np.log10(abs(1 - gain)), abs=1e-9)


def test_snr_of_silent_decode_and_reference():
    x = np.random.default_rng(0).standard_normal(16000)
    assert snr(x, np.zeros_like(x), 16000) == pytest.approx(0.0)
    assert si_snr(x, np.zeros_like(x), 16000) == -math.inf
    for fn in (snr, si_snr, segmental_snr):
        with pytest.warns(MetricWarning, match="silent"):
            assert math.isnan(fn(np.zeros(16000), x, 16000))


def test_metrics_reject_unaligned_lengths():
    with pytest.raises(AudioError, match="align"):
        snr(np.ones(100), np.ones(101), 16000)


# -- spectral metrics -------------------------------------------------------------------------
@pytest.mark.parametrize("fc", [2000.0, 4000.0, 6000.0])
def test_effective_bandwidth_of_low_passed_speech(speech, fc):
    x, sr = speech
    bw = effective_bandwidth(x, lowpass(x, fc, sr), sr)
    assert fc <= bw <= fc * 1.06


@pytest.mark.parametrize("fc", [4000.0, 12000.0, 20000.0])
def test_effective_bandwidth_of_low_passed_noise_at_48k(fc):
    sr = 48000
    x = np.random.default_rng(4).standard_normal(2 * sr)
    bw = effective_bandwidth(x, lowpass(x, fc, sr), sr)
    assert fc <= bw <= fc * 1.06


def test_effective_bandwidth_ignores_isolated_bins_and_band_limited_reference():
    sr = 16000
    rng = np.random.default_rng(5)
    x = lowpass(rng.standard_normal(4 * sr), 5000.0, sr)  # the reference itself stops at 5 kHz
    # identical: the reference's own content edge, where it has fallen 60 dB (~5.7 kHz here)
    assert 5000.0 <= effective_bandwidth(x, x, sr) <= 6000.0
    y = lowpass(x, 3000.0, sr)
    t = np.arange(x.size) / sr
    y_tone = y + 0.05 * np.sin(2 * np.pi * 4500 * t)  # one stray tone above the cut-off
    assert effective_bandwidth(x, y_tone, sr) == pytest.approx(effective_bandwidth(x, y, sr), abs=100)
    assert effective_bandwidth(x, np.zeros_like(x), sr) == 0.0


def test_mel_distance_and_lsd_grow_with_degradation(speech):
    x, sr = speech
    mild, strong = lowpass(x, 6000, sr), lowpass(x, 2000, sr)
    assert 0 < mel_distance(x, mild, sr) < mel_distance(x, strong, sr)
    assert 0 < log_spectral_distance(x, mild, sr) < log_spectral_distance(x, strong, sr)
    # a 6 dB gain shifts every log10 value by log10(2) (magnitude) or 2 log10(2) (power) where no
    # floor is hit: true for white noise, not for the near-silent pauses of the speech file
    w = np.random.default_rng(8).standard_normal(2 * sr)
    assert mel_distance(w, 2 * w, sr) == pytest.approx(np.log10(2), rel=0.02)
    assert log_spectral_distance(w, 2 * w, sr) == pytest.approx(2 * np.log10(2), rel=0.01)
    assert mel_distance(x, 2 * x, sr) < np.log10(2)


def test_lsd_short_input():
    x = np.random.default_rng(6).standard_normal(500)
    assert log_spectral_distance(x, x, 16000) == 0.0
    assert log_spectral_distance(x, 0.5 * x, 16000) == pytest.approx(2 * np.log10(2), rel=1e-3)


# -- alignment inside compute_metrics ------------------------------------------------------------
@pytest.mark.parametrize("delay", [160, -77])
def test_compute_metrics_compensates_delay(speech, delay):
    x, sr = speech
    y = x + noise_at_snr(x, 20.0)
    shifted = np.concatenate([np.zeros(delay), y]) if delay > 0 else y[-delay:]
    report = compute_metrics(x, shifted, sr, ["snr", "si_snr"])
    assert report.delay_samples == delay
    assert report.values["snr"] == pytest.approx(20.0, abs=0.2)
    assert report.values["si_snr"] == pytest.approx(20.0, abs=0.2)


# -- external metrics ----------------------------------------------------------------------------
def test_pesq_and_stoi_drop_with_noise(speech):
    x, sr = speech
    y = x + noise_at_snr(x, 5.0)
    assert 1.0 <= pesq_wb(x, y, sr) < 2.5
    assert 0.4 < stoi(x, y, sr) < 0.95


def test_pesq_resamples_other_rates(speech):
    from neurocodec.audio import resample

    x, sr = speech
    x24 = resample(x[None].astype(np.float32), sr, 24000)[0].astype(np.float64)
    assert pesq_wb(x24, x24, 24000) == pytest.approx(4.64, abs=0.01)


def test_pesq_no_utterances_gives_nan_with_warning(speech, monkeypatch):
    import pesq

    def no_speech(*args, **kwargs):
        raise pesq.NoUtterancesError(b"No utterances detected")

    monkeypatch.setattr(pesq, "pesq", no_speech)
    x, sr = speech
    with pytest.warns(MetricWarning, match="no utterances"):
        assert math.isnan(pesq_wb(x, x, sr))
    report = compute_metrics(x, x, sr, ["pesq_wb", "snr"])
    assert math.isnan(report.values["pesq_wb"]) and "no utterances" in report.failures["pesq_wb"]
    assert report.values["snr"] == math.inf and "snr" not in report.failures


def test_short_or_silent_inputs_give_nan_not_crash():
    rng = np.random.default_rng(7)
    x = rng.standard_normal(1600)  # 0.1 s: too short for PESQ and STOI
    report = compute_metrics(x, x, 16000, ["pesq_wb", "stoi", "snr"])
    assert math.isnan(report.values["pesq_wb"]) and "too short" in report.failures["pesq_wb"]
    assert math.isnan(report.values["stoi"]) and "frames" in report.failures["stoi"]
    assert report.values["snr"] == math.inf
    silent = compute_metrics(np.zeros(32000), rng.standard_normal(32000), 16000, ["pesq_wb", "stoi"])
    assert all(math.isnan(v) for v in silent.values.values())
    assert all("silent" in r for r in silent.failures.values())


def test_visqol_speech_in_range_and_ordered(speech):
    x, sr = speech
    x = x[:3 * sr]  # keep the test short
    clean = metrics_ext.visqol_speech(x, x, sr)
    noisy = metrics_ext.visqol_speech(x, x + noise_at_snr(x, 10.0), sr)
    assert 1.0 <= noisy < clean <= 5.0
    assert clean > 4.0


@pytest.mark.slow
def test_dnsmos_in_range(speech):
    x, sr = speech
    report = compute_metrics(x, x, sr, ["dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl", "dnsmos_p808"])
    assert report.failures == {}
    for name, v in report.values.items():
        assert 1.0 <= v <= 5.0, name
    # one model run serves all four names
    assert report.seconds["dnsmos_bak"] < 0.1 and report.seconds["dnsmos_ovrl"] < 0.1
    # the same numbers as speechmos's own entry point (speechmos.dnsmos.run) gives for this clip
    v = report.values
    assert (v["dnsmos_sig"], v["dnsmos_bak"], v["dnsmos_ovrl"], v["dnsmos_p808"]) == pytest.approx(
        (3.5690, 4.1324, 3.3274, 3.9725), abs=1e-3)


@pytest.mark.slow
def test_dnsmos_background_score_drops_with_noise(speech):
    x, sr = speech
    clean = metrics_ext.dnsmos(x, sr)
    noisy = metrics_ext.dnsmos(x + noise_at_snr(x, 5.0), sr)
    assert noisy.bak < clean.bak - 1.0 and noisy.ovrl < clean.ovrl


@pytest.mark.slow
def test_visqol_audio_in_range_and_ordered(music_path):
    audio, sr = read_audio(music_path)
    x = audio[0].astype(np.float64)
    clean = metrics_ext.visqol_audio(x, x, sr)
    degraded = metrics_ext.visqol_audio(x, lowpass(x, 3000, sr), sr)
    assert 1.0 <= degraded < clean <= 5.0


# -- registry and errors ---------------------------------------------------------------------------
def test_registry_entries_are_consistent():
    for name, spec in METRICS.items():
        assert spec.name == name and callable(spec.function) and spec.unit is not None
    assert {"snr", "segsnr", "si_snr", "pesq_wb", "stoi", "estoi", "visqol_speech", "visqol_audio",
            "dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl", "mel_distance", "lsd", "bandwidth"} <= set(METRICS)
    assert not METRICS["mel_distance"].higher_is_better and METRICS["pesq_wb"].higher_is_better
    assert "dnsmos_ovrl" in metric_names(intrusive=False) and "snr" not in metric_names(intrusive=False)
    assert set(metric_names(slow=False)) >= set(FAST)


def test_metric_functions_are_importable_from_metrics():
    from neurocodec.eval import metrics

    for name in metrics.__all__:
        assert hasattr(metrics, name), name
    assert metrics.METRICS["pesq_wb"].function is metrics.pesq_wb


def test_unknown_metric_lists_known_names(speech):
    x, sr = speech
    with pytest.raises(UnknownMetricError, match="unknown metric 'pesq'.*pesq_wb") as info:
        compute_metrics(x, x, sr, ["snr", "pesq"])
    assert isinstance(info.value, UserError)
    with pytest.raises(UserError):
        get_metric("mos")


def test_missing_package_raises_user_error_naming_pip_package(speech, monkeypatch):
    x, sr = speech
    fake = dataclasses.replace(METRICS["stoi"], requires=(("no_such_module_xyz", "no-such-pkg"),))
    monkeypatch.setitem(METRICS, "stoi", fake)
    with pytest.raises(MissingPackageError, match="pip install no-such-pkg"):
        compute_metrics(x, x, sr, ["stoi"])
    # with the default list, the metric is skipped and the reason recorded
    monkeypatch.setattr("neurocodec.eval.metrics.METRICS", {"snr": METRICS["snr"], "stoi": fake})
    report = compute_metrics(x, x, sr)
    assert report.values["snr"] == math.inf
    assert math.isnan(report.values["stoi"]) and "no-such-pkg" in report.failures["stoi"]


def test_require_names_pip_package():
    metrics_ext.PIP_NAMES["no_such_module_xyz"] = "no-such-pkg"
    try:
        with pytest.raises(MissingPackageError, match=r"metric 'm' needs .*pip install no-such-pkg"):
            metrics_ext.require("no_such_module_xyz", "m")
    finally:
        del metrics_ext.PIP_NAMES["no_such_module_xyz"]


def test_metric_crash_is_recorded_not_raised(speech, monkeypatch):
    x, sr = speech

    def broken(ref, deg, sr):
        raise RuntimeError("model exploded")

    monkeypatch.setitem(METRICS, "lsd", dataclasses.replace(METRICS["lsd"], function=broken))
    report = compute_metrics(x, x, sr, ["lsd", "snr"])
    assert math.isnan(report.values["lsd"]) and report.failures["lsd"] == "RuntimeError: model exploded"
    assert report.values["snr"] == math.inf


def test_metric_specific_user_error_is_recorded(monkeypatch):
    """PEAQ raises AudioError for signals shorter than its averaging needs: a NaN, not a crash."""
    x = np.random.default_rng(9).standard_normal(3000)
    report = compute_metrics(x, x, 16000, ["peaq_odg", "snr"])
    assert math.isnan(report.values["peaq_odg"]) and report.failures["peaq_odg"].startswith("AudioError")
    assert report.values["snr"] == math.inf


def test_peaq_and_twof_share_one_analysis(speech):
    x, sr = speech
    y = x + noise_at_snr(x, 20.0)
    report = compute_metrics(x[:2 * sr], y[:2 * sr], sr, ["peaq_odg", "twof"])
    assert report.failures == {}
    assert -4.0 <= report.values["peaq_odg"] <= 0.5 and 0.0 <= report.values["twof"] <= 100.0
    assert report.seconds["twof"] < 0.05


def test_bad_audio_raises_audio_error():
    with pytest.raises(AudioError, match="NaN"):
        compute_metrics(np.array([0.0, np.nan]), np.zeros(2), 16000, ["snr"])
    with pytest.raises(AudioError, match="mono"):
        compute_metrics(np.zeros((2, 100)), np.zeros((2, 100)), 16000, ["snr"])


def test_no_stray_warnings_from_compute_metrics(speech):
    x, sr = speech
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        compute_metrics(x, x + noise_at_snr(x, 20.0), sr, FAST)
