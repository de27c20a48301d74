"""Residual VQ (defossez2022 §3.2, Algorithm 1): residual structure, EMA, k-means init, dead codes,
straight-through gradient and commitment loss."""

import torch

from neurocodec.quant.rvq import EmaCodebook, ResidualVQ, kmeans


def test_kmeans_finds_separated_clusters():
    torch.manual_seed(0)
    centres = torch.tensor([[5.0, 0.0], [-5.0, 0.0], [0.0, 5.0]])
    x = torch.cat([c + 0.1 * torch.randn(200, 2) for c in centres])
    means, bins = kmeans(x, 3, iters=20)
    d = torch.cdist(centres, means).min(dim=1).values
    assert d.max() < 0.1
    assert sorted(bins.tolist()) == [200, 200, 200]


def test_first_training_batch_initialises_by_kmeans():
    torch.manual_seed(0)
    cb = EmaCodebook(4, bins=8, kmeans_iters=10).train()
    assert cb.inited.item() == 0 and cb.embed.abs().sum() == 0
    x = torch.randn(500, 4)
    cb(x)
    assert cb.inited.item() == 1
    assert cb.embed.abs().sum() > 0


def test_ema_update_formula():
    cb = EmaCodebook(2, bins=2, decay=0.9, threshold=0.0, kmeans_init=False).train()
    with torch.no_grad():
        cb.embed.copy_(torch.tensor([[0.0, 0.0], [10.0, 10.0]]))
        cb.embed_avg.copy_(cb.embed)
        cb.cluster_size.fill_(1.0)
    x = torch.tensor([[1.0, 1.0], [1.0, 3.0], [9.0, 9.0]])
    cb(x)
    size = torch.tensor([0.9 + 0.1 * 2, 0.9 + 0.1 * 1])
    assert torch.allclose(cb.cluster_size, size)
    avg = torch.tensor([[0.9 * 0 + 0.1 * 2, 0.9 * 0 + 0.1 * 4], [0.9 * 10 + 0.1 * 9, 0.9 * 10 + 0.1 * 9]])
    assert torch.allclose(cb.embed_avg, avg)
    total = size.sum()
    smoothed = (size + 1e-5) / (total + 2e-5) * total
    assert torch.allclose(cb.embed, avg / smoothed[:, None])


def test_dead_codes_are_replaced_from_the_batch():
    torch.manual_seed(0)
    cb = EmaCodebook(3, bins=4, threshold=2.0, kmeans_init=False).train()
    with torch.no_grad():
        cb.embed.copy_(torch.full((4, 3), 100.0))
        cb.embed[0] = 0.0
        cb.embed_avg.copy_(cb.embed)
        cb.cluster_size.copy_(torch.tensor([50.0, 50.0, 1.0, 0.5]))  # entries 2 and 3 are dead
    x = torch.randn(64, 3)
    assert cb.replace_dead(x) == 2
    rows = {tuple(r.tolist()) for r in x}
    assert tuple(cb.embed[2].tolist()) in rows and tuple(cb.embed[3].tolist()) in rows
    assert cb.embed[1].eq(100.0).all()
    assert cb.cluster_size[2] == 2.0


def test_rvq_is_residual_and_refines_with_more_codebooks():
    torch.manual_seed(0)
    rvq = ResidualVQ(dim=8, n_q=6, bins=16, kmeans_iters=10).train()
    z = torch.randn(4, 8, 50)
    for _ in range(3):
        rvq(z)
    rvq.eval()
    errs = []
    for k in range(1, 7):
        codes = rvq.encode(z, k)
        assert codes.shape == (k, 4, 50)
        zq = rvq.decode(codes)
        errs.append((zq - z).pow(2).mean().item())
        # Algorithm 1: codebook k quantizes the residual left by the first k-1
        prev = rvq.decode(codes[:-1]) if k > 1 else torch.zeros_like(z)
        res = (z - prev).transpose(1, 2).reshape(-1, 8)
        assert torch.equal(rvq.codebooks[k - 1].nearest(res).view(4, 50), codes[-1])
    assert all(b < a for a, b in zip(errs, errs[1:]))
    out = rvq(z, n_q=3)
    assert torch.equal(out.codes, rvq.encode(z, 3))


def test_straight_through_gradient_and_commitment():
    torch.manual_seed(0)
    rvq = ResidualVQ(dim=4, n_q=2, bins=8, kmeans_iters=5).train()
    z = torch.randn(2, 4, 30, requires_grad=True)
    out = rvq(z)
    assert out.commitment.item() > 0
    g = torch.randn_like(out.quantized)
    (out.quantized * g).sum().backward()
    assert torch.allclose(z.grad, g)  # identity in the backward pass
    z.grad = None
    rvq(z).commitment.backward()
    assert z.grad.abs().sum() > 0
