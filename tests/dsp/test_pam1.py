import math

import numpy as np
import torch

from neurocodec.dsp.pam1 import (POWER_NORM_DB, PerceptualLoss, PsychoacousticModel1, absolute_threshold_db,
                                 bark, spreading_db)


def _tone(freq=1000.0, amp=0.5, n=512, sr=16000):
    t = torch.arange(n, dtype=torch.float64)
    return amp * torch.sin(2 * math.pi * freq * t / sr)


def test_one_tone_masker_worked_case():
    pam = PsychoacousticModel1(16000, 512)
    r = pam(_tone()[None])
    tonal = torch.isfinite(r.tonal_db[0]).nonzero().flatten().tolist()
    assert tonal == [32]  # 1000 Hz / 31.25 Hz
    # Hann window: peak bin amp/4, neighbours amp/8 -> power of the three bins
    p = POWER_NORM_DB + 20 * math.log10(0.5 / 4) + 10 * math.log10(1.5)
    assert float(r.tonal_db[0, 32]) == pytest_approx(p)
    assert not torch.isfinite(r.noise_db[0]).any()  # the leakage of one tone is under Tq
    z = bark(np.arange(257) * 31.25)
    tq = absolute_threshold_db(np.arange(257) * 31.25)
    for i in (32, 30, 40, 60):
        dz = z[i] - z[32]
        sf = float(spreading_db(torch.tensor(dz, dtype=torch.float64), torch.tensor(p, dtype=torch.float64)))
        want = 10 * math.log10(10 ** (tq[i] / 10) + 10 ** ((p - 0.275 * z[32] + sf - 6.025) / 10))
        assert float(r.threshold_db[0, i]) == pytest_approx(want)
    assert int(r.threshold_db[0].argmax()) in (0, 32)  # Tq dominates at DC only
    assert float(r.threshold_db[0, 32]) == pytest_approx(p - 0.275 * z[32] - 6.025, abs=0.01)


def pytest_approx(v, abs=1e-6):
    import pytest
    return pytest.approx(v, abs=abs)


def test_spreading_function_pieces():
    p = torch.tensor(60.0)
    assert float(spreading_db(torch.tensor(-2.0), p)) == pytest_approx(17 * -2 - 0.4 * 60 + 11)
    assert float(spreading_db(torch.tensor(-0.5), p)) == pytest_approx((0.4 * 60 + 6) * -0.5)
    assert float(spreading_db(torch.tensor(0.5), p)) == pytest_approx(-8.5)
    assert float(spreading_db(torch.tensor(3.0), p)) == pytest_approx(-2 * (17 - 9) - 17)
    assert float(spreading_db(torch.tensor(9.0), p)) == -math.inf
    assert float(spreading_db(torch.tensor(-3.5), p)) == -math.inf


def test_white_noise_is_masked_by_non_tonal_maskers():
    torch.manual_seed(0)
    pam = PsychoacousticModel1(16000, 512)
    x = 0.1 * torch.randn(64, 512, dtype=torch.float64)
    r = pam(x)
    n_tonal = torch.isfinite(r.tonal_db).sum(1).float()
    n_noise = torch.isfinite(r.noise_db).sum(1).float()
    assert n_tonal.mean() < 4 and n_noise.mean() > 15  # 22 critical bands below 8 kHz
    tq = torch.tensor(absolute_threshold_db(np.arange(257) * 31.25))
    assert (r.threshold_db >= tq - 1e-9).all()
    # noise at -20 dB re full scale: the mask sits well above Tq in the mid bands, below the spectrum
    mid = slice(64, 192)
    assert (r.threshold_db[:, mid] > tq[mid] + 10).float().mean() > 0.95
    # a frame without tonal maskers: each kept non-tonal masker carries its whole band's power
    f = int(torch.nonzero(n_tonal == 0)[0])
    lin = 10 ** (r.spectrum_db[f] / 10)
    band = pam.band
    for b in (8, 12, 16):
        pos = int(pam.band_centre[b])
        if torch.isfinite(r.noise_db[f, pos]):
            want = 10 * torch.log10(lin[band == b].sum())
            assert float(r.noise_db[f, pos]) == pytest_approx(float(want), abs=1e-9)


def test_nmr_losses():
    torch.manual_seed(1)
    loss = PerceptualLoss()
    x = 0.1 * torch.randn(4, 512)
    g0, l0 = loss(x, x.clone())
    assert float(g0) == 0.0 and float(l0) == 0.0
    small = (x + 1e-3 * torch.randn_like(x)).requires_grad_()
    g1, l1 = loss(x, small)
    g2, l2 = loss(x, x + 3e-2 * torch.randn_like(x))
    assert 0 < float(g1.detach()) < float(g2) and 0 < float(l1.detach()) < float(l2)
    (g1 + l1).backward()
    assert small.grad is not None and torch.isfinite(small.grad).all()
    gm, lm = loss.masks(x)
    assert gm.shape == (4, 257) and lm.shape == (4, 7, 65)
