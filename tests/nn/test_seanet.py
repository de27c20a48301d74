"""SEANet layers (defossez2022 §3.1): shapes, and streaming = whole-file for every layer kind."""

import pytest
import torch

from neurocodec.nn.seanet import SConv1d, SConvTranspose1d, SeanetConfig, SeanetDecoder, SeanetEncoder


def _chunks(x, sizes):
    pos, out = 0, []
    for n in sizes:
        out.append(x[..., pos:pos + n])
        pos += n
    out.append(x[..., pos:])
    return out


@pytest.mark.parametrize("pad_mode", ["reflect", "constant"])
@pytest.mark.parametrize("kernel,stride,dilation", [(7, 1, 1), (3, 1, 2), (8, 4, 1), (16, 8, 1)])
def test_conv_stream_equals_whole(pad_mode, kernel, stride, dilation):
    torch.manual_seed(0)
    conv = SConv1d(3, 5, kernel, stride, dilation, pad_mode=pad_mode).eval()
    for length in (1, 5, 37, 200):
        x = torch.randn(1, 3, length)
        with torch.no_grad():
            whole = conv(x)
            st = {}
            parts = [conv.stream(c, st) for c in _chunks(x, [1, 2, 9, 4, 30])[:-1]]
            parts.append(conv.stream(x[..., 46:], st, final=True))
        streamed = torch.cat(parts, -1)
        assert streamed.shape == whole.shape, length
        assert torch.allclose(streamed, whole, atol=1e-6)


@pytest.mark.parametrize("grad", [False, True])
def test_transposed_conv_stream_keeps_overlap_as_state(grad):
    """Inference streams in the polyphase form (state: the last K/s - 1 input frames); with
    autograd on, the transposed convolution keeps its K - s overlapping samples instead."""
    torch.manual_seed(0)
    up = SConvTranspose1d(4, 2, 10, 5).eval()
    x = torch.randn(1, 4, 12)
    with torch.set_grad_enabled(grad):
        whole = up(x)
        st = {}
        parts = [up.stream(x[..., i:i + 1], st) for i in range(12)]
        assert all(p.shape[-1] == 5 for p in parts)  # s samples out per input frame
        if grad:
            assert st["pending"].shape[-1] == 5  # K - s kept for the next frame
        else:
            assert st["hist"].shape[-1] == 1  # K / s - 1 input frames
        parts.append(up.stream(x[..., :0], st, final=True))
        blocks = [up.stream(c, st) for c in _chunks(x, [3, 1, 7])[:-1]] + [up.stream(x[..., 11:], st, final=True)]
    assert torch.allclose(torch.cat(parts, -1), whole, atol=1e-6)
    assert torch.allclose(torch.cat(blocks, -1), whole, atol=1e-6)
    assert whole.shape[-1] == 60


def test_shapes_24k_and_48k():
    enc, dec = SeanetEncoder(SeanetConfig()), SeanetDecoder(SeanetConfig())
    z = enc(torch.randn(1, 1, 3200))
    assert z.shape == (1, 128, 10)  # 75 frames per second at 24 kHz
    assert dec(z).shape == (1, 1, 3200)
    cfg = SeanetConfig(channels=2, causal=False, norm="time_group_norm")
    z = SeanetEncoder(cfg)(torch.randn(1, 2, 4800))
    assert z.shape == (1, 128, 15)
    assert SeanetDecoder(cfg)(z).shape == (1, 2, 4800)


def test_encoder_decoder_stream_in_320_sample_pieces():
    torch.manual_seed(0)
    cfg = SeanetConfig(n_filters=4, pad_mode="constant")
    enc, dec = SeanetEncoder(cfg).eval(), SeanetDecoder(cfg).eval()
    x = torch.randn(1, 1, 320 * 9 + 17)
    with torch.no_grad():
        z = enc(x)
        st, zs = {}, []
        for i in range(0, x.shape[-1], 320):
            zs.append(enc.stream(x[..., i:i + 320], st))
            if i + 320 <= x.shape[-1]:
                assert zs[-1].shape[-1] == 1  # constant padding: one frame per 320 samples, no delay
        zs.append(enc.stream(x[..., :0], st, final=True))
        assert torch.allclose(torch.cat(zs, -1), z, atol=1e-5)
        y = dec(z)
        st, ys = {}, []
        for i in range(z.shape[-1]):
            ys.append(dec.stream(z[..., i:i + 1], st))
            assert ys[-1].shape[-1] == 320
        ys.append(dec.stream(z[..., :0], st, final=True))
        assert torch.allclose(torch.cat(ys, -1), y, atol=1e-5)


@pytest.mark.parametrize("blocks", [[3, 1, 5, 2], [9, 9, 2]])
def test_decoder_streams_blocks_with_its_fast_paths(blocks):
    """A decoder's layers (``decoding``) stream blocks of frames through the whole-signal kernels
    (LSTM from the carried state, 1x1 convolutions as GEMMs, polyphase transposed convolutions
    with the last input frames as state); the result is the whole-signal decode. An encoder's
    layers keep their streaming kernels (its bitstreams must not move)."""
    torch.manual_seed(1)
    cfg = SeanetConfig(n_filters=4)
    enc, dec = SeanetEncoder(cfg).eval(), SeanetDecoder(cfg).eval()
    assert not any(getattr(m, "decoding", False) for m in enc.modules())
    assert dec.lstm.decoding and dec.output_conv.decoding
    z = torch.randn(1, cfg.dimension, sum(blocks))
    with torch.no_grad():
        y = dec(z)
        st, ys, a = {}, [], 0
        for n in blocks:
            ys.append(dec.stream(z[..., a:a + n], st))  # reflect padding: output may lag
            a += n
        ys.append(dec.stream(z[..., :0], st, final=True))
    assert torch.allclose(torch.cat(ys, -1), y, atol=1e-5)


def test_weight_norm_cache_follows_new_weights():
    conv = SConv1d(2, 2, 3).eval()
    x = torch.randn(1, 2, 10)
    with torch.no_grad():
        a = conv(x)
        conv.weight_g.mul_(2)
        b = conv(x)
    assert not torch.allclose(a, b)


def test_inference_fast_paths_match_the_convolutions():
    """Whole-signal inference (eval, no grad) runs 1x1 convolutions and the residual sum as GEMMs and
    reflect padding as a concatenation: the same values as conv1d / F.pad (to float rounding)."""
    import torch.nn.functional as F

    from neurocodec.nn.seanet import ResidualUnit, _pad

    torch.manual_seed(0)
    x = torch.randn(2, 8, 500)
    assert torch.equal(_pad(x, 6, 3, "reflect"), F.pad(x, (6, 3), mode="reflect"))
    short = x[..., :3]  # shorter than the padding: zeros appended first, then reflected (the reference's rule)
    assert torch.equal(_pad(short, 6, 0, "reflect"), F.pad(F.pad(short, (0, 4)), (6, 0), mode="reflect")[..., :-4])
    for causal in (True, False):
        unit = ResidualUnit(8, causal=causal, norm="weight_norm").eval()
        slow = unit(x)  # grad enabled: the convolution path
        with torch.no_grad():
            fast = unit(x)
        assert fast.shape == slow.shape and (fast - slow).abs().max().item() < 1e-5


@pytest.mark.parametrize("kernel,stride", [(4, 2), (10, 5), (16, 8), (3, 1), (6, 3)])
def test_polyphase_transposed_conv_matches_conv_transpose(kernel, stride):
    """Inference runs a causal transposed convolution as a polyphase conv1d: the values of
    ``conv_transpose1d`` with its last ``K - S`` samples trimmed (to float rounding), and the
    decoder's last convolution (one output channel) as one GEMM of its taps."""
    torch.manual_seed(1)
    up = SConvTranspose1d(6, 4, kernel, stride).eval()
    x = torch.randn(2, 6, 37)
    slow = up(x)  # grad enabled: conv_transpose1d
    with torch.no_grad():
        fast = up(x)
        up.weight_g.mul_(3)  # the cached polyphase weights follow new weights
        fast3 = up(x)
    assert fast.shape == slow.shape == (2, 4, 37 * stride)
    assert (fast - slow).abs().max().item() < 1e-5
    assert not torch.allclose(fast, fast3)
    last = SConv1d(6, 1, 7, pad_mode="constant").eval()
    slow = last(x)
    with torch.no_grad():
        fast = last(x)
    assert fast.shape == slow.shape and (fast - slow).abs().max().item() < 1e-5


@pytest.mark.parametrize("kernel,stride", [(4, 2), (8, 4), (12, 4)])
@pytest.mark.parametrize("pad_mode", ["reflect", "constant"])
def test_polyphase_strided_conv_matches_conv1d(kernel, stride, pad_mode, monkeypatch):
    """Inference runs a strided convolution of kernel m x stride as a stride-1 convolution over the
    stacked phases: the values of the strided conv1d (to float rounding), for lengths that are and
    are not multiples of the stride, and new weights are picked up."""
    from neurocodec.nn import seanet

    monkeypatch.setattr(seanet, "POLYPHASE_STRIDES", (stride,))
    calls = []
    monkeypatch.setattr(SConv1d, "_polyphase", lambda self, x, f=SConv1d._polyphase: calls.append(1) or f(self, x))
    torch.manual_seed(2)
    conv = SConv1d(5, 7, kernel, stride, pad_mode=pad_mode).eval()
    for length in (64, 67, 101):
        x = torch.randn(2, 5, length)
        slow = conv(x)  # grad enabled: conv1d with the stride
        with torch.no_grad():
            fast = conv(x)
        assert fast.shape == slow.shape and (fast - slow).abs().max().item() < 1e-5
    with torch.no_grad():
        conv.weight_g.mul_(2)
        assert torch.allclose(conv(x), 2 * (slow - conv.bias[:, None]) + conv.bias[:, None], atol=1e-5)
    assert len(calls) == 4  # the no-grad calls took the polyphase path


def test_in_place_elu_leaves_the_input_alone():
    torch.manual_seed(2)
    cfg = SeanetConfig(dimension=8, n_filters=4, lstm_layers=1)
    enc, dec = SeanetEncoder(cfg).eval(), SeanetDecoder(cfg).eval()
    x = torch.randn(1, 1, 960)
    keep = x.clone()
    with torch.no_grad():
        z = enc(x)
        zk = z.clone()
        y = dec(z)
    assert torch.equal(x, keep) and torch.equal(z, zk)
    assert torch.allclose(y, dec(zk).detach(), atol=1e-5)
