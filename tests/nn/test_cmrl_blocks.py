"""Tests of the CMRL/CQ component autoencoder blocks (zhen2019 Table 1, zhen2020 Table 1)."""

from __future__ import annotations

import pytest
import torch

from neurocodec.nn.cmrl_blocks import (AutoencoderConfig, BottleneckBlock, ComponentAutoencoder,
                                       SubPixelUpsample1d, count_parameters, interlace)


def test_parameter_count_matches_papers():
    ae = ComponentAutoencoder()
    # zhen2020 §4.3: "Each AE ... contains 0.45 million parameters"
    assert ae.num_parameters() == 465_372
    assert abs(ae.num_parameters() - 450_000) / 450_000 < 0.05
    # "The AE in CQ-9 kbps is 0.67 million parameters" (two down/upsampling layers)
    ae2 = ComponentAutoencoder(AutoencoderConfig(num_downsamples=2))
    assert ae2.num_parameters() == 682_607
    assert abs(ae2.num_parameters() - 670_000) / 670_000 < 0.05


def test_table1_shapes():
    ae = ComponentAutoencoder().eval()
    x = torch.randn(3, 1, 512)
    code = ae.encode(x)
    assert code.shape == (3, 256) and code.abs().max() <= 1.0
    assert ae.decode(code).shape == (3, 1, 512)
    enc = ae.encoder
    assert enc.input.weight.shape == (100, 1, 9)
    assert enc.downs[0].conv.weight.shape == (100, 100, 9) and enc.downs[0].conv.stride == (2,)
    block = enc.stages[0].blocks[1]
    assert block.reduce.weight.shape == (20, 100, 9) and block.middle.dilation == (2,)
    assert block.expand.weight.shape == (100, 20, 9)
    dec = ae.decoder
    assert dec.ups[0].conv.weight.shape == (100, 100, 9)
    assert dec.last_stage.blocks[0].reduce.weight.shape == (20, 50, 9)
    assert dec.output.weight.shape == (1, 50, 9)
    ae2 = ComponentAutoencoder(AutoencoderConfig(num_downsamples=2))
    assert ae2.encode(x).shape == (3, 128)


def test_interlace_known_values():
    x = torch.arange(2 * 4 * 3, dtype=torch.float32).reshape(2, 4, 3)
    y = interlace(x, 2)
    assert y.shape == (2, 2, 6)
    # channel pair (0, 1) -> channel 0: x[0,0,0], x[0,1,0], x[0,0,1], x[0,1,1], ...
    assert y[0, 0].tolist() == [0, 3, 1, 4, 2, 5]
    assert y[0, 1].tolist() == [6, 9, 7, 10, 8, 11]
    with pytest.raises(ValueError):
        interlace(torch.zeros(1, 3, 2), 2)


def test_subpixel_upsample_doubles_width_halves_channels():
    up = SubPixelUpsample1d(100, 9, 0.2)
    assert up(torch.randn(2, 100, 256)).shape == (2, 50, 512)


def test_bottleneck_block_is_identity_plus_residual():
    block = BottleneckBlock(100, 20, 9, 2, 0.2)
    with torch.no_grad():
        block.expand.weight.zero_()
        block.expand.bias.zero_()
    x = torch.randn(2, 100, 64)
    torch.testing.assert_close(block(x), x)
    assert count_parameters(block) == 9 * 100 * 20 + 20 + 9 * 20 * 20 + 20 + 9 * 20 * 100 + 100


def test_gradients_reach_every_parameter():
    torch.manual_seed(0)
    ae = ComponentAutoencoder()
    ae(torch.randn(2, 1, 512)).pow(2).mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in ae.parameters())


def test_bad_configs_and_inputs():
    with pytest.raises(ValueError):
        AutoencoderConfig(frame_length=510, num_downsamples=2)
    with pytest.raises(ValueError):
        AutoencoderConfig(kernel_size=8)
    ae = ComponentAutoencoder()
    with pytest.raises(ValueError):
        ae.encode(torch.zeros(1, 1, 500))
    with pytest.raises(ValueError):
        ae.decode(torch.zeros(1, 100))
