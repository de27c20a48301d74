import math

import numpy as np
import pytest
import torch
from scipy.integrate import quad
from scipy.stats import norm

from neurocodec.entropy.factorized import FactorizedDensity
from neurocodec.entropy.gaussian import (SCALE_TABLE, gaussian_likelihood, gaussian_tables, scale_index)
from neurocodec.entropy.range_coder import RangeDecoder, RangeEncoder
from neurocodec.entropy.tables import ESCAPE_LIMIT


def _random_fem(seed=0):
    torch.manual_seed(seed)
    fem = FactorizedDensity(3)
    with torch.no_grad():
        for p in fem.parameters():
            p.add_(torch.randn_like(p))
    return fem


def test_fem_is_a_proper_cdf():
    fem = _random_fem()
    assert sum(p.numel() for p in fem.parameters()) == 3 * 43  # 43 per channel (byun2023 §3.2.1)
    x = torch.linspace(-200, 200, 4001).view(1, 1, -1).expand(1, 3, -1).contiguous()
    c = fem.cdf(x)
    assert (c.diff(dim=-1) >= 0).all()  # monotone
    assert (c[..., 0] < 1e-6).all() and (c[..., -1] > 1 - 1e-6).all()  # 0 .. 1
    lik = fem.likelihood(torch.arange(-300, 301.0).view(1, 1, -1).expand(1, 3, -1))
    assert torch.allclose(lik.double().sum(-1), torch.ones(1, 3, dtype=torch.float64), atol=1e-5)


def test_gaussian_likelihood_matches_numerical_integration():
    for mu, s, z in [(0.3, 1.7, 2.0), (-1.2, 0.5, -1.0), (0.0, 4.0, 7.0), (2.5, 0.2, 0.0)]:
        want, _ = quad(lambda t: norm.pdf(t, loc=mu, scale=s), z - 0.5, z + 0.5, epsabs=1e-13)
        got = gaussian_likelihood(torch.tensor(z, dtype=torch.float64), torch.tensor(mu, dtype=torch.float64),
                                  torch.tensor(s, dtype=torch.float64), floor=0.0)
        assert float(got) == pytest.approx(max(want, 0.0), rel=1e-7, abs=1e-15)


def test_scale_index_nearest_in_log():
    assert scale_index([SCALE_TABLE[5]])[0] == 5
    assert scale_index([1e-3, 1e6]).tolist() == [0, len(SCALE_TABLE) - 1]
    mid = math.sqrt(SCALE_TABLE[10] * SCALE_TABLE[11])
    assert scale_index([mid * 0.999, mid * 1.001]).tolist() == [10, 11]


def test_gaussian_tables_round_trip_with_escapes_and_ideal_length():
    rng = np.random.default_rng(1)
    t = gaussian_tables()
    rows = rng.integers(0, t.num_rows, 5000)
    vals = np.rint(rng.standard_normal(5000) * SCALE_TABLE[rows]).astype(np.int64)
    vals[:3] = [ESCAPE_LIMIT - 1, -ESCAPE_LIMIT, 900]  # escapes
    rows[:3] = 0
    enc = RangeEncoder()
    t.encode(enc, vals, rows)
    data = enc.getvalue()
    dec = RangeDecoder(data)
    assert np.array_equal(t.decode(dec, rows), vals)
    dec.finish()
    assert abs(8 * len(data) - t.bits(vals, rows)) < 0.01 * t.bits(vals, rows) + 64
    with pytest.raises(ValueError):
        t.encode(RangeEncoder(), [ESCAPE_LIMIT], [0])


def test_fem_tables_follow_the_density():
    fem = _random_fem(2)
    t = fem.tables()
    x = torch.arange(-20, 21.0).view(1, 1, -1).expand(1, 3, -1)
    lik = fem.likelihood(x)[0].detach().double().numpy()
    for c in range(3):
        sym = np.arange(-20, 21) - t.offsets[c]
        inside = (sym >= 0) & (sym < t.sizes[c])
        p = np.diff(t.cdfs[c]) / 65536.0
        big = inside & (lik[c] > 1e-3)
        assert np.allclose(p[sym[big]], lik[c][big], rtol=0.02, atol=2 / 65536)
