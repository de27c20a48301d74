"""byun2023 coder on an accelerator, checked without one: every tensor made on the training and
evaluation paths (PAM-1, NMR losses, framing, densities, GDN) must follow the input's device.

The check runs the real computation on the CPU with the *default* device set to ``meta``: a
tensor created without ``device=`` lands on ``meta`` and mixing it with the CPU input raises (or
leaves a ``meta`` result, which the assertions catch), which is what a CPU-made tensor does next
to a CUDA input."""

from __future__ import annotations

import pytest
import torch

from neurocodec.codecs.perceptual import (PerceptualFemCodec, PerceptualHpmCodec, frame_signal, overlap_add,
                                          perceptual_config)
from neurocodec.dsp.pam1 import PerceptualLoss, PsychoacousticModel1
from neurocodec.entropy.factorized import FactorizedDensity
from neurocodec.nn.gdn import GDN1d


def _frames(n=6, seed=1):
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(512, dtype=torch.float32) / 16000
    tone = 0.3 * torch.sin(2 * torch.pi * 1000 * t)
    return tone + 0.05 * torch.randn(n, 512, generator=g)


def test_pam1_and_nmr_make_tensors_on_the_input_device():
    x = _frames()
    pam = PsychoacousticModel1(16000, 512)
    loss = PerceptualLoss(16000, 512)
    ref = pam(x).threshold_db
    ref_g, ref_l = loss(x, x + 0.01)
    with torch.device("meta"):
        thr = pam(x).threshold_db
        lg, ll = loss(x, x + 0.01)
    assert thr.device.type == "cpu" and lg.device.type == "cpu" and ll.device.type == "cpu"
    assert torch.equal(thr, ref)
    assert float(lg) == float(ref_g) and float(ll) == float(ref_l)


def test_framing_follows_the_input_device():
    x = torch.randn(2, 3001)
    with torch.device("meta"):
        fr = frame_signal(x, 512, 32)
        y = overlap_add(fr, 3001, 32)
    assert fr.device.type == "cpu" and y.device.type == "cpu"
    assert torch.allclose(y, x, atol=1e-6)


@pytest.mark.parametrize("cls", [PerceptualFemCodec, PerceptualHpmCodec])
def test_training_and_validation_steps_follow_the_input_device(cls):
    torch.manual_seed(0)
    cfg = perceptual_config(16, cls.density, channels=8, bottleneck_channels=4, hyper_channels=4,
                            hyper_latent=1)
    m = cls(cfg).train()
    m.set_phase("quantize")
    batch = _frames(4).reshape(2, 1, 1024)
    m.perceptual_loss()  # built outside: under the meta default its buffers would be made on meta
    with torch.device("meta"):
        out = m.training_step(batch, 0)
        out["loss"].backward()
        val = m.validation_step(batch)
        rec = m.reconstruct(batch)
    assert out["loss"].device.type == "cpu" and torch.isfinite(out["loss"])
    assert all(p.grad is None or p.grad.device.type == "cpu" for p in m.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in m.parameters())
    assert rec.device.type == "cpu" and rec.shape == batch.shape
    assert val["rate/estimated_kbps"] > 0


def test_loss_module_built_after_a_move_follows_the_model():
    m = PerceptualFemCodec(perceptual_config(16, "fem", channels=8, bottleneck_channels=4)).to("meta")
    loss = m.perceptual_loss(torch.device("meta"))
    assert {b.device.type for b in loss.buffers()} == {"meta"}


def test_density_tables_and_gdn_inverse_follow_their_device():
    d = FactorizedDensity(2)
    ref = d.quantiles()
    with torch.device("meta"):
        q = d.quantiles()
        t = d.tables()
    assert torch.equal(q, ref) and t is not None
    g = GDN1d(3)
    x = torch.randn(2, 3, 5)
    with torch.device("meta"):
        back = g.invert(g(x).detach())
    assert torch.allclose(back, x, atol=1e-5)
