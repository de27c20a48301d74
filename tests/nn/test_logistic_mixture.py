"""Discretized mixture of logistics over 16-bit PCM against numerical integration (fejgin2020 §3.2)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import integrate

from neurocodec.nn import logistic_mixture as dmol


def _mixture_pdf(y, logits, mu, log_s):
    pi = np.exp(logits - logits.max())
    pi /= pi.sum()
    s = np.exp(log_s)
    z = -np.abs((y - mu) / s)  # the logistic density is symmetric
    return float(np.sum(pi * np.exp(z) / (s * (1 + np.exp(z)) ** 2)))


def _params(logits, mu, log_s):
    return torch.tensor(np.concatenate([logits, mu, log_s]), dtype=torch.float64)


@pytest.mark.parametrize("log_s", [np.array([-9.0, -7.5, -6.0]), np.array([-3.0, -2.0, -4.0])])
def test_bin_probabilities_match_integrated_density(log_s):
    logits = np.array([0.3, -0.5, 1.0])
    mu = np.array([-0.01, 0.002, 0.02])
    p = _params(logits, mu, log_s)
    for v in [-700, -330, -1, 0, 1, 66, 655, 5000]:
        lo, hi = (v - 0.5) / 32768, (v + 0.5) / 32768
        want, _ = integrate.quad(_mixture_pdf, lo, hi, args=(logits, mu, log_s), epsabs=0, epsrel=1e-10)
        got = float(torch.exp(dmol.log_prob_int(torch.tensor(v), p)))
        assert got == pytest.approx(want, rel=1e-6), v


def test_edges_fold_the_tails_and_total_is_one():
    logits = np.array([0.0, 0.0])
    mu = np.array([-0.999, 0.999])
    log_s = np.array([-5.0, -5.5])
    p = _params(logits, mu, log_s)
    v = torch.arange(-32768, 32768)
    probs = torch.exp(dmol.log_prob_int(v, p.expand(v.numel(), -1)))
    assert float(probs.sum()) == pytest.approx(1.0, abs=1e-9)
    # the bottom value owns (-inf, (-32768 + 0.5) / 32768]
    want, _ = integrate.quad(_mixture_pdf, -1.2, (-32768 + 0.5) / 32768, args=(logits, mu, log_s), epsrel=1e-10)
    want += 0.5 / (1 + np.exp(-(-1.2 - mu[0]) / np.exp(log_s[0])))  # below -1.2 (component 0 only)
    assert float(probs[0]) == pytest.approx(want, rel=1e-6)


def test_float32_matches_float64_for_narrow_and_wide_logistics():
    p64 = _params(np.array([0.1, 0.2]), np.array([0.0, 0.01]), np.array([-12.0, -1.0]))
    v = torch.tensor([-3, 0, 2, 40, 400])
    a = dmol.log_prob_int(v, p64.expand(5, -1))
    b = dmol.log_prob_int(v, p64.float().expand(5, -1))
    assert torch.allclose(a, b.double(), atol=2e-4)
    assert torch.isfinite(b).all()


def test_sampler_draws_from_the_discretized_mixture():
    logits = np.array([0.0, 1.0])
    mu = np.array([-20 / 32768, 10 / 32768])
    log_s = np.log(np.array([3.0, 6.0]) / 32768)
    p = np.concatenate([logits, mu, log_s])
    rng = np.random.default_rng(0)
    n = 200_000
    v = dmol.sample(np.broadcast_to(p, (n, 6)), rng)
    values, counts = np.unique(v, return_counts=True)
    grid = torch.arange(-80, 81)
    probs = torch.exp(dmol.log_prob_int(grid, torch.tensor(p).expand(grid.numel(), -1))).numpy()
    emp = np.zeros(grid.numel())
    inside = (values >= -80) & (values <= 80)
    emp[values[inside] + 80] = counts[inside] / n
    # every bin within 5 standard errors, and a chi-square over bins with >= 50 expected draws
    se = np.sqrt(probs * (1 - probs) / n) + 1e-9
    assert np.all(np.abs(emp - probs) < 5 * se + 1e-5)
    big = probs * n >= 50
    chi2 = np.sum((emp[big] * n - probs[big] * n) ** 2 / (probs[big] * n))
    assert chi2 < big.sum() + 5 * np.sqrt(2 * big.sum())


def test_sampler_clips_to_pcm_range_and_is_reproducible():
    p = np.array([0.0, 1.2, np.log(0.5)])
    a = dmol.sample(np.broadcast_to(p, (1000, 3)), np.random.default_rng(7))
    b = dmol.sample(np.broadcast_to(p, (1000, 3)), np.random.default_rng(7))
    assert np.array_equal(a, b)
    assert a.max() == 32767 and a.min() >= -32768
