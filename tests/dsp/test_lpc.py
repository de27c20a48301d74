"""Tests of neurocodec.dsp.lpc: LPC analysis, LSPs, residual and synthesis (zhen2020 §3.1)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import scipy.signal
import torch

from neurocodec.dsp import lpc


def random_stable_lpc(rng, n, order=16, kmax=0.9):
    """A(z) from random reflection coefficients in (-kmax, kmax) (always minimum phase)."""
    ks = rng.uniform(-kmax, kmax, size=(n, order))
    a = np.zeros((n, order + 1))
    a[:, 0] = 1.0
    for i in range(1, order + 1):
        prev = a.copy()
        a[:, 1:i] = prev[:, 1:i] + ks[:, i - 1:i] * prev[:, i - 1:0:-1]
        a[:, i] = ks[:, i - 1]
    return a


def speechlike(rng, n):
    """Noise through a two-formant resonator: a realistic LPC target."""
    x = rng.standard_normal(n)
    x = scipy.signal.lfilter([1.0], [1.0, -1.3, 0.8], x)
    return scipy.signal.lfilter([1.0], [1.0, 0.9, 0.6], x)


# -- pre-processing ------------------------------------------------------------------------
def test_preemphasis_deemphasis_round_trip_numpy_and_torch():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3000))
    y = lpc.preemphasis(x)
    assert y[0, 5] == pytest.approx(x[0, 5] - 0.68 * x[0, 4])
    np.testing.assert_allclose(lpc.deemphasis(y), x, atol=1e-12)
    xt = torch.tensor(x)
    yt = lpc.preemphasis_torch(xt)
    np.testing.assert_allclose(yt.numpy(), y, atol=1e-12)
    np.testing.assert_allclose(lpc.deemphasis_torch(yt).numpy(), x, atol=1e-10)


def test_highpass_removes_dc_and_keeps_speech_band():
    fs = 16000
    t = np.arange(fs) / fs
    dc = np.ones(fs)
    tone = np.sin(2 * np.pi * 1000 * t)
    assert np.abs(lpc.highpass(dc)[-4000:]).max() < 1e-3
    out = lpc.highpass(tone)
    assert np.abs(out[-4000:]).max() == pytest.approx(1.0, abs=1e-2)
    # -3 dB at the 50 Hz cut-off (Butterworth)
    w, h = scipy.signal.sosfreqz(lpc.highpass_sos(), worN=[50.0], fs=fs)
    assert 20 * np.log10(abs(h[0])) == pytest.approx(-3.01, abs=0.05)


def test_highpass_torch_matches_numpy_and_is_differentiable():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 5000))
    xt = torch.tensor(x, requires_grad=True)
    yt = lpc.highpass_torch(xt)
    np.testing.assert_allclose(yt.detach().numpy(), lpc.highpass(x), atol=1e-9)
    yt.sum().backward()
    assert xt.grad is not None and torch.isfinite(xt.grad).all()


# -- windows -------------------------------------------------------------------------------
def test_analysis_window_shape_fig3a():
    w = lpc.lpc_analysis_window(1024)
    assert w.shape == (1024,)
    np.testing.assert_array_equal(w[256:768], 1.0)
    assert w[0] == 0.0 and np.all(np.diff(w[:256]) > 0) and np.all(np.diff(w[768:]) < 0)


def test_subframe_windows_fig3b_sum_to_one():
    w = lpc.subframe_windows(512, 128)
    assert w.shape == (7, 128)
    np.testing.assert_array_equal(w[0, :64], 1.0)
    np.testing.assert_array_equal(w[-1, 64:], 1.0)
    np.testing.assert_allclose(w[3], 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(128) / 128))
    np.testing.assert_allclose(lpc.subframe_window_sum(512, 128), 1.0, atol=1e-15)


def test_overlap_add_window_is_perfect_reconstruction():
    S, o = 512, 32
    w = lpc.overlap_add_window(S, o)
    hop = S - o
    total = np.zeros(hop * 10 + o)
    for f in range(10):
        total[f * hop: f * hop + S] += w
    np.testing.assert_allclose(total[o: hop * 10], 1.0, atol=1e-15)


# -- Levinson-Durbin -----------------------------------------------------------------------
def test_levinson_matches_solve_toeplitz():
    rng = np.random.default_rng(3)
    frames = np.stack([speechlike(rng, 1024) for _ in range(6)])
    r = lpc.autocorrelation(frames * lpc.lpc_analysis_window(), 16)
    res = lpc.levinson_durbin(r)
    for j in range(len(frames)):
        alpha = scipy.linalg.solve_toeplitz(r[j, :16], r[j, 1:17])
        np.testing.assert_allclose(res.a[j, 1:], -alpha, rtol=1e-8, atol=1e-10)
    assert np.all(np.abs(res.k) < 1) and np.all(res.error > 0)
    # the prediction-error power equals r0 + sum a_i r_i
    np.testing.assert_allclose(res.error, np.sum(res.a * r, axis=-1), rtol=1e-8)


def test_levinson_torch_matches_numpy_and_has_gradients():
    rng = np.random.default_rng(4)
    frames = np.stack([speechlike(rng, 1024) for _ in range(4)])
    r = lpc.autocorrelation(frames, 16)
    rt = torch.tensor(r, requires_grad=True)
    out = lpc.levinson_durbin_torch(rt)
    np.testing.assert_allclose(out.a.detach().numpy(), lpc.levinson_durbin(r).a, atol=1e-9)
    out.a.sum().backward()
    assert torch.isfinite(rt.grad).all() and rt.grad.abs().sum() > 0


def test_silent_frames_give_identity_filter():
    a = lpc.lpc_from_frames(np.zeros((2, 1024)))
    np.testing.assert_array_equal(a, np.eye(1, 17).repeat(2, 0))
    at = lpc.lpc_from_frames_torch(torch.zeros(2, 1024, dtype=torch.float64))
    np.testing.assert_allclose(at.numpy(), a)


def test_lpc_from_frames_is_minimum_phase_and_torch_agrees():
    rng = np.random.default_rng(5)
    frames = np.stack([speechlike(rng, 1024) for _ in range(8)])
    a = lpc.lpc_from_frames(frames)
    assert lpc.is_minimum_phase(a).all()
    at = lpc.lpc_from_frames_torch(torch.tensor(frames))
    np.testing.assert_allclose(at.numpy(), a, atol=1e-9)


# -- LSPs ----------------------------------------------------------------------------------
def test_lpc_lsp_round_trip_random_stable_order16():
    rng = np.random.default_rng(6)
    a = random_stable_lpc(rng, 500)
    w = lpc.lpc_to_lsp(a)
    assert w.shape == (500, 16)
    assert np.all(np.diff(w, axis=-1) > 0) and np.all(w > 0) and np.all(w < math.pi)
    np.testing.assert_allclose(lpc.lsp_to_lpc(w), a, atol=1e-8)
    np.testing.assert_allclose(lpc.lsp_to_lpc_torch(torch.tensor(w)).numpy(), a, atol=1e-8)


def test_lsps_are_the_unit_circle_zeros_and_interlace():
    rng = np.random.default_rng(7)
    a = random_stable_lpc(rng, 20, kmax=0.8)
    f, g = lpc._sum_diff_polys(a)
    w = lpc.lpc_to_lsp(a)
    for j in range(len(a)):
        wp = np.sort(np.angle(np.roots(f[j])))
        wq = np.sort(np.angle(np.roots(g[j])))
        wp, wq = wp[wp > 0], wq[wq > 0]
        np.testing.assert_allclose(w[j, 0::2], wp, atol=1e-7)  # odd-numbered LSPs: P
        np.testing.assert_allclose(w[j, 1::2], wq, atol=1e-7)  # even-numbered: Q
        assert np.all(wp < wq) and np.all(wq[:-1] < wp[1:])  # interlacing


def test_known_lsp_of_identity_filter():
    # A(z) = 1: P = 1 + z^-17, Q = 1 - z^-17 -> LSPs are k*pi/17
    w = lpc.lpc_to_lsp(np.eye(1, 17))
    np.testing.assert_allclose(w[0], np.arange(1, 17) * math.pi / 17, atol=1e-12)


def test_lsp_rejects_odd_order():
    with pytest.raises(ValueError, match="even"):
        lpc.lpc_to_lsp(np.ones((1, 16)))


def test_stabilize_lsp_enforces_gap_and_minimum_phase():
    gap = 2 * math.pi * 50 / 16000
    w = np.array([[0.0, 0.001, 0.5, 0.5, 0.5, 1.0, 1.2, 1.4, 1.6, 2.0, 2.2, 2.5, 3.0, 3.14, 3.14159, 3.2]])
    s = lpc.stabilize_lsp(w, gap)
    assert np.all(np.diff(s) >= gap - 1e-12) and s[0, 0] >= gap and s[0, -1] <= math.pi - gap + 1e-12
    assert lpc.is_minimum_phase(lpc.lsp_to_lpc(s)).all()
    st = lpc.stabilize_lsp_torch(torch.tensor(w), gap)
    np.testing.assert_allclose(st.numpy(), s, atol=1e-12)
    # already well-spaced LSPs are left alone
    good = np.linspace(0.1, 3.0, 16)[None]
    np.testing.assert_allclose(lpc.stabilize_lsp(good, gap), good)


# -- residual and synthesis ----------------------------------------------------------------
def test_residual_and_synthesis_perfect_reconstruction():
    rng = np.random.default_rng(8)
    s = speechlike(rng, 512 * 6)
    frames = lpc.analysis_frames(s, 6)
    a = lpc.lpc_from_frames(frames)
    e = lpc.lpc_residual(s, a)
    # the ideal residual is the unit-variance innovation (57.6% of the energy here)
    assert np.sum(e ** 2) < 0.65 * np.sum(s ** 2)
    np.testing.assert_allclose(lpc.lpc_synthesis(e, a), s, atol=1e-9)


def test_residual_is_plain_fir_filtering_per_segment():
    rng = np.random.default_rng(9)
    s = rng.standard_normal(1024)
    a = random_stable_lpc(rng, 2, kmax=0.7)
    e = lpc.lpc_residual(s, a)
    full0 = scipy.signal.lfilter(a[0], [1.0], s)
    full1 = scipy.signal.lfilter(a[1], [1.0], s)
    np.testing.assert_allclose(e[:512], full0[:512], atol=1e-12)
    np.testing.assert_allclose(e[512:], full1[512:], atol=1e-12)


def test_torch_residual_and_synthesis_match_numpy():
    rng = np.random.default_rng(10)
    s = np.stack([speechlike(rng, 512 * 4) for _ in range(2)])
    a = np.stack([lpc.lpc_from_frames(lpc.analysis_frames(x, 4)) for x in s])
    e = np.stack([lpc.lpc_residual(s[b], a[b]) for b in range(2)])
    et = lpc.lpc_residual_torch(torch.tensor(s), torch.tensor(a))
    np.testing.assert_allclose(et.numpy(), e, atol=1e-10)
    at = torch.tensor(a, requires_grad=True)
    st = lpc.lpc_synthesis_torch(torch.tensor(e), at)
    np.testing.assert_allclose(st.detach().numpy(), s, atol=1e-8)
    st.pow(2).sum().backward()
    assert torch.isfinite(at.grad).all() and at.grad.abs().sum() > 0


def test_impulse_response_matches_lfilter():
    rng = np.random.default_rng(11)
    a = random_stable_lpc(rng, 3, kmax=0.6)
    h = lpc.impulse_response_torch(torch.tensor(a), 300).numpy()
    imp = np.zeros(300)
    imp[0] = 1.0
    for j in range(3):
        np.testing.assert_allclose(h[j], scipy.signal.lfilter([1.0], a[j], imp), atol=1e-11)


def test_synthesis_rejects_mismatched_segments():
    with pytest.raises(ValueError, match="segments"):
        lpc.lpc_synthesis(np.zeros(1000), np.eye(1, 17).repeat(2, 0))


def test_stability_factors_fix_crowded_lsps_and_leave_good_filters_alone():
    gap = 2 * math.pi * 50 / 16000
    crowded = 0.02 + gap * np.arange(16)  # float64 expansion of this is not minimum phase
    a = lpc.lsp_to_lpc(crowded[None])
    assert not lpc.is_minimum_phase(a).all()
    f = lpc.stability_factors(a)
    assert f[0] < 1.0 and lpc.is_minimum_phase(lpc.bandwidth_expand(a, f)).all()
    good = random_stable_lpc(np.random.default_rng(12), 10, kmax=0.8)
    np.testing.assert_array_equal(lpc.stability_factors(good), 1.0)
    np.testing.assert_allclose(np.abs(np.roots(lpc.bandwidth_expand(good[0], 0.5))),
                               0.5 * np.abs(np.roots(good[0])), rtol=1e-9)
