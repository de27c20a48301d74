import torch

from neurocodec.nn.gdn import GDN1d
from neurocodec.nn.resglu import ResGLUBlock, ResGLULayer


def test_gdn_parameters_stay_positive_even_when_driven_negative():
    g = GDN1d(4)
    with torch.no_grad():
        g.beta.fill_(-3.0)
        g.gamma.fill_(-1.0)
    assert (g.effective_beta() > 0).all()
    assert (g.effective_gamma() >= 0).all()
    # the bound lets a parameter that sits on it be pushed back up
    opt = torch.optim.SGD(g.parameters(), lr=0.1)
    x = torch.randn(2, 4, 16)
    (-g(x).abs().sum()).backward()  # grows outputs: wants smaller beta, which is clamped
    before = g.beta.detach().clone()
    g.beta.grad.fill_(-1.0)  # a gradient that raises beta must pass through the bound
    opt.step()
    assert (g.beta > before).all()


def test_gdn_known_value_and_exact_inverse():
    torch.manual_seed(0)
    g = GDN1d(3)
    with torch.no_grad():
        g.gamma.copy_(g._gamma.init(torch.tensor([[0.5, 0.1, 0.0], [0.2, 0.3, 0.1], [0.0, 0.4, 0.2]])))
        g.beta.copy_(g._beta.init(torch.tensor([1.0, 0.5, 2.0])))
    x = torch.tensor([[[1.0], [2.0], [-1.0]]])
    expect = torch.tensor([1.0 / (1 + 0.5 + 0.4) ** 0.5, 2.0 / (0.5 + 0.2 + 1.2 + 0.1) ** 0.5,
                           -1.0 / (2.0 + 1.6 + 0.2) ** 0.5])
    assert torch.allclose(g(x)[0, :, 0], expect, atol=1e-6)
    xs = torch.randn(2, 3, 50) * 3
    assert torch.allclose(g.invert(g(xs)), xs, atol=1e-4)


def test_igdn_multiplies():
    g = GDN1d(2, inverse=True)
    x = torch.randn(1, 2, 5)
    beta, gamma = g.effective_beta(), g.effective_gamma()
    ref = x * torch.sqrt(beta[None, :, None] + torch.einsum("ij,bjt->bit", gamma, x * x))
    assert torch.allclose(g(x), ref, atol=1e-6)


def test_resglu_block_shapes_and_receptive_field():
    blk = ResGLUBlock(8)
    assert len(blk.layers) == 6
    assert [l.conv.dilation[0] for l in blk.layers] == [1, 2, 4, 8, 16, 32]
    assert all(l.conv.kernel_size[0] == 9 for l in blk.layers)
    x = torch.zeros(1, 8, 1000, requires_grad=True)
    y = blk(x)
    assert y.shape == x.shape
    y[0, :, 500].sum().backward()
    nz = (x.grad[0].abs().sum(0) > 0).nonzero().flatten()
    assert nz.min() == 500 - 4 * 63 and nz.max() == 500 + 4 * 63  # (k-1)/2 * sum(dilations)
    ch = ResGLULayer(1, 8)
    assert ch(torch.randn(2, 1, 33)).shape == (2, 8, 33) and not ch.residual
