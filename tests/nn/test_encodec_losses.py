"""EnCodec training objective (defossez2022 §3.4): balancer math (Eq. 5), MS-STFT discriminator
shapes, hinge and feature-matching losses, multi-scale mel loss."""

import math

import torch

from neurocodec.nn.encodec_losses import (Balancer, MsStftDiscriminator, MultiScaleMelLoss,
                                          discriminator_hinge_loss, feature_matching_loss, generator_hinge_loss)


def test_balancer_follows_eq5():
    y = torch.zeros(1, 1, 6, requires_grad=True)
    a = torch.tensor([1.0, 2, 0, 0, 0, 2])  # ||a|| = 3
    b = torch.tensor([0.0, 0, 4, 0, 3, 0])  # ||b|| = 5
    bal = Balancer({"a": 1.0, "b": 3.0}, total_norm=1.0, beta=0.5)
    g, norms = bal.combined_gradient({"a": (y * a).sum(), "b": (y * b).sum()}, y)
    assert math.isclose(norms["a"], 3.0) and math.isclose(norms["b"], 5.0)
    expect = 0.25 * a / 3 + 0.75 * b / 5
    assert torch.allclose(g.flatten(), expect)
    # second step, losses 10x larger: the EMA of the norms is (0.5 * 3 + 30) / (0.5 + 1) for a
    g, _ = bal.combined_gradient({"a": (y * 10 * a).sum(), "b": (y * 10 * b).sum()}, y)
    ema_a, ema_b = (0.5 * 3 + 30) / 1.5, (0.5 * 5 + 50) / 1.5
    assert torch.allclose(g.flatten(), 0.25 * 10 * a / ema_a + 0.75 * 10 * b / ema_b)
    # the surrogate's gradient is the balanced gradient
    y.grad = None
    s, _ = Balancer({"a": 1.0, "b": 3.0}).backward_surrogate({"a": (y * a).sum(), "b": (y * b).sum()}, y)
    s.backward()
    assert torch.allclose(y.grad.flatten(), expect)


def test_msstft_discriminator_shapes():
    d = MsStftDiscriminator(channels=8)
    outs = d(torch.randn(2, 1, 8000))
    assert len(outs) == 5
    for (logits, feats), n_fft in zip(outs, (2048, 1024, 512, 256, 128)):
        assert logits.shape[0] == 2 and logits.shape[1] == 1
        assert len(feats) == 5  # first conv, three dilated convs, 3x3 conv
        bins = n_fft // 2 + 1
        assert feats[0].shape[2] == bins
        assert feats[1].shape[2] == (bins + 1) // 2  # frequency stride 2
        frames = 8000 // (n_fft // 4) + 1
        assert all(frames - 2 <= f.shape[3] <= frames for f in feats)  # 'same'-style time padding


def test_hinge_and_feature_losses():
    r, f = [torch.full((1, 4), 2.0)], [torch.full((1, 4), -2.0)]
    assert discriminator_hinge_loss(r, f).item() == 0.0  # both sides beyond the margin
    assert discriminator_hinge_loss(f, r).item() == 6.0
    assert generator_hinge_loss(f).item() == 3.0
    feats = [[torch.ones(2, 3)]]
    assert feature_matching_loss(feats, feats).item() == 0.0
    assert math.isclose(feature_matching_loss([[torch.full((2, 3), 2.0)]], [[torch.ones(2, 3)]]).item(), 0.5)


def test_mel_loss_is_zero_for_equal_signals_and_positive_otherwise():
    loss = MultiScaleMelLoss(24000)
    assert len(loss.mels) == 7
    x = torch.randn(2, 1, 4000)
    assert loss(x, x).item() == 0.0
    assert loss(x, 0.5 * x).item() > 0
