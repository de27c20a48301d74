"""Tests of the soft-to-hard (softmax) scalar quantizer (zhen2020 §2.2, §3.3)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from neurocodec.quant import SoftToHardQuantizer, anneal_alpha, soft_histogram_entropy


def test_gradients_flow_to_inputs_and_centroids():
    torch.manual_seed(0)
    q = SoftToHardQuantizer(32).train()
    x = (torch.rand(4, 256) * 2 - 1).requires_grad_(True)
    out = q(x, alpha=50.0)
    loss = (out.output - 0.3).pow(2).mean() + 0.1 * out.penalty + 0.1 * out.entropy_bits
    loss.backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert q.centroids.grad is not None and q.centroids.grad.abs().sum() > 0


def test_straight_through_is_hard_forward_soft_backward():
    q = SoftToHardQuantizer(8, train_output="ste").train()
    x = torch.linspace(-0.9, 0.9, 50, requires_grad=True)
    out = q(x, alpha=20.0)
    torch.testing.assert_close(out.output, out.hard)
    out.output.sum().backward()
    g_ste = x.grad.clone()
    x.grad = None
    q(x, alpha=20.0).soft.sum().backward()
    torch.testing.assert_close(g_ste, x.grad)


def test_eval_output_is_nearest_centroid():
    torch.manual_seed(1)
    q = SoftToHardQuantizer(32)
    with torch.no_grad():
        q.centroids.copy_(torch.sort(torch.randn(32)).values)
    q.eval()
    x = torch.randn(1000)
    out = q(x, alpha=300.0)
    nearest = torch.argmin((x[:, None] - q.centroids[None, :]).abs(), dim=1)
    torch.testing.assert_close(out.indices, nearest)
    torch.testing.assert_close(out.output, q.centroids[nearest])
    torch.testing.assert_close(q.dequantize(q.quantize_indices(x)), out.output)


def test_soft_approaches_hard_as_alpha_grows():
    q = SoftToHardQuantizer(16).train()
    x = torch.rand(500) * 2 - 1
    gaps = [(q(x, a).soft - q(x, a).hard).abs().max().item() for a in (10.0, 1e3, 1e6)]
    assert gaps[0] > gaps[1] > gaps[2]
    assert gaps[2] < 1e-3
    assert q(x, 1e6).penalty.item() == pytest.approx(0.0, abs=0.05)


def test_penalty_and_entropy_known_values():
    q = SoftToHardQuantizer(4, centroids=np.array([-1.5, -0.5, 0.5, 1.5]))
    # alpha = 0: uniform assignment -> entropy log2 J, penalty sqrt(J) - 1
    out = q(torch.zeros(10), alpha=0.0)
    assert out.entropy_bits.item() == pytest.approx(2.0, abs=1e-6)
    assert out.penalty.item() == pytest.approx(math.sqrt(4) - 1, abs=1e-6)
    # very large alpha, values exactly on two centroids half the time each -> 1 bit
    x = torch.tensor([-0.5, 0.5] * 8)
    out = q(x, alpha=1e4)
    assert out.entropy_bits.item() == pytest.approx(1.0, abs=1e-4)
    assert out.bits.item() == pytest.approx(16.0, abs=1e-2)
    probs = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    assert soft_histogram_entropy(probs).item() == pytest.approx(1.0, abs=1e-6)


def test_frozen_quantizer_has_no_trainable_centroids():
    q = SoftToHardQuantizer(8, trainable=False)
    assert not q.centroids.requires_grad
    assert q.bits_per_symbol == 3.0


def test_bad_arguments():
    with pytest.raises(ValueError):
        SoftToHardQuantizer(1)
    with pytest.raises(ValueError):
        SoftToHardQuantizer(4, train_output="bogus")
    with pytest.raises(ValueError):
        SoftToHardQuantizer(4, centroids=np.zeros(3))


def test_anneal_alpha_is_geometric():
    assert anneal_alpha(0.0, 5, 300) == pytest.approx(5)
    assert anneal_alpha(1.0, 5, 300) == pytest.approx(300)
    assert anneal_alpha(0.5, 5, 300) == pytest.approx(math.sqrt(5 * 300))
    assert anneal_alpha(7.0, 5, 300) == pytest.approx(300)


def test_scale_makes_alpha_relative_to_centroid_spacing():
    x = torch.linspace(0.1, 3.0, 200)
    fine = torch.linspace(0.05, 3.1, 256)
    spacing = float(fine[1] - fine[0])
    raw = SoftToHardQuantizer(256, centroids=fine.numpy())
    scaled = SoftToHardQuantizer(256, centroids=fine.numpy(), scale=spacing)
    # in raw units alpha = 300 is almost uniform over neighbouring LSP centroids ...
    assert raw(x, 300.0).penalty.item() > 1.0
    # ... in units of the spacing it is close to hard, like the 32 code centroids on [-1, 1]
    assert scaled(x, 300.0).penalty.item() < 0.2
    torch.testing.assert_close(scaled.quantize_indices(x), raw.quantize_indices(x))
    with pytest.raises(ValueError):
        SoftToHardQuantizer(4, scale=0.0)
