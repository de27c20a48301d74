"""fejgin2020 §2.2 toy example: sampler exactness, Table 1 ordering and values, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from neurocodec.experiments import toy
from neurocodec.experiments.toy import (PAPER_TABLE1, ToyConfigError, format_table, naive_rejection,
                                        quantize, reconstruct, run_toy, sample_posterior,
                                        sine_source)


def test_sine_source_and_quantizers():
    x = sine_source(np.array([0.5]), np.array([0.0]), d=4)
    np.testing.assert_allclose(x[0], np.cos(np.pi * 0.5 * np.arange(1, 5)), atol=1e-12)
    v = np.array([-1.0, -0.3, 0.0, 0.26, 0.74, 0.99])
    # midtread: delta * round(x / delta); midrise: midpoints of [m delta, (m+1) delta)
    np.testing.assert_allclose(reconstruct(quantize(v, 0.5, "midtread"), 0.5, "midtread"),
                               [-1.0, -0.5, 0.0, 0.5, 0.5, 1.0])
    np.testing.assert_allclose(reconstruct(quantize(v, 0.5, "midrise"), 0.5, "midrise"),
                               [-0.75, -0.25, 0.25, 0.25, 0.75, 0.75])
    with pytest.raises(ToyConfigError):
        quantize(v, 0.5, "uniform")


@pytest.mark.parametrize("quantizer", ["midrise", "midtread"])
def test_posterior_samples_match_naive_rejection(quantizer):
    rng = np.random.default_rng(1)
    delta = 1.0
    y = quantize(sine_source(0.23, 0.61), delta, quantizer)
    fast = sample_posterior(np.repeat(y[None], 40, axis=0), delta, 50, rng, quantizer)
    xs = fast.samples.reshape(-1, 10)
    assert np.all(quantize(xs, delta, quantizer) == y)
    slow, draws = naive_rejection(y, delta, 2000, rng, quantizer)
    assert np.all(quantize(slow, delta, quantizer) == y)
    for k in (0, 3, 9):
        assert stats.ks_2samp(xs[:, k], slow[:, k]).pvalue > 1e-3
    # the estimated cell probability is the naive sampler's acceptance rate
    p_naive = 2000 / draws
    assert fast.cell_probability.mean() == pytest.approx(p_naive, rel=0.2)
    assert fast.accepted / fast.candidates > 20 * p_naive


def test_ks_check_detects_a_wrong_posterior():
    # negative control: samples for a neighbouring code vector are told apart
    rng = np.random.default_rng(2)
    y1 = quantize(sine_source(0.23, 0.61), 1.0)
    y2 = quantize(sine_source(0.27, 0.61), 1.0)
    assert not np.array_equal(y1, y2)
    a = sample_posterior(np.repeat(y1[None], 20, 0), 1.0, 50, rng).samples.reshape(-1, 10)
    b = sample_posterior(np.repeat(y2[None], 20, 0), 1.0, 50, rng).samples.reshape(-1, 10)
    assert min(stats.ks_2samp(a[:, k], b[:, k]).pvalue for k in range(10)) < 1e-6


def test_table1_ordering_and_values_small_run():
    res = run_toy(trials=300, seed=3, progress=False)
    assert [r.delta for r in res.rows] == [0.5, 1.0]
    for row in res.rows:
        assert row.midpoint > row.sampling > row.mean_of_realizations
        paper = PAPER_TABLE1[row.delta]
        got = (row.midpoint, row.sampling, row.mean_of_realizations)
        for g, p, tol in zip(got, paper, (0.15, 0.3, 0.3)):
            assert abs(g / p - 1) < tol, (row.delta, g, p)
        # eq. (2)-(3): one draw costs 2x the MMSE, the mean of R draws (1 + 1/R)x
        assert row.mean_of_realizations / row.sampling == pytest.approx(0.55, abs=0.1)
    text = format_table(res)
    assert "0.0056" in text and "0.068" in text


def test_midpoint_mse_matches_arcsine_integral():
    # each x[k] is cos of a uniform phase, so the midpoint MSE is an integral over the phase
    theta = (np.arange(200_000) + 0.5) / 200_000 * np.pi
    for quantizer in ("midrise", "midtread"):
        res = run_toy(deltas=(1.0,), trials=400, seed=4, progress=False, quantizer=quantizer,
                      realizations=2)
        row = res.rows[0]
        c = np.cos(theta)
        exact = np.mean((c - reconstruct(quantize(c, 1.0, quantizer), 1.0, quantizer)) ** 2)
        assert abs(row.midpoint - exact) < 4 * row.midpoint_stderr
    assert exact == pytest.approx(0.0640, abs=5e-4)  # midtread differs from Table 1's 0.11


def test_run_is_reproducible_for_a_seed():
    a = run_toy(deltas=(1.0,), trials=50, seed=7, progress=False, realizations=3)
    b = run_toy(deltas=(1.0,), trials=50, seed=7, progress=False, realizations=3)
    assert a.rows[0].sampling == b.rows[0].sampling


def test_main_writes_json_and_rejects_bad_arguments(tmp_path, capsys):
    out = tmp_path / "toy.json"
    assert toy.main(["--trials", "40", "--deltas", "1", "--json", str(out), "--no-progress"]) == 0
    data = json.loads(out.read_text())
    assert data["rows"][0]["delta"] == 1.0 and data["rows"][0]["trials"] == 40
    assert "Mean of 10 realizations" in capsys.readouterr().out
    assert toy.main(["--trials", "10", "--deltas", "-1", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and err.count("\n") == 1
    with pytest.raises(ToyConfigError):
        run_toy(trials=0)


def test_impossible_and_null_code_vectors():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="not a possible"):
        sample_posterior(np.full((1, 10), 3), 1.0, 2, rng)
    # z = (0.5, 0.5) puts every sample exactly on a cell boundary: P(Omega_y) is ~0
    y = quantize(sine_source(0.5, 0.5), 1.0)
    with pytest.raises(RuntimeError, match="zero probability"):
        sample_posterior(y[None], 1.0, 2, rng, max_candidates_per_trial=10 ** 5)
