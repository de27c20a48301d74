"""Under DDP (two gloo processes on different data) the RVQ's EMA buffers, k-means
initialisations and dead-code replacements stay identical on every rank."""

import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, port: int, out: str) -> None:
    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(port)
    dist.init_process_group("gloo", rank=rank, world_size=2)
    torch.set_num_threads(1)
    from neurocodec.quant.rvq import ResidualVQ

    torch.manual_seed(100 + rank)  # different data and different local random draws per rank
    rvq = ResidualVQ(dim=4, n_q=3, bins=16, kmeans_iters=3, threshold=2.0).train()
    for _ in range(4):
        rvq(torch.randn(2, 4, 20) * (1 + rank))
    torch.save({k: v.clone() for k, v in rvq.state_dict().items()}, f"{out}/rank{rank}.pt")
    dist.destroy_process_group()


def test_buffers_identical_on_two_ranks(tmp_path):
    mp.spawn(_worker, args=(_free_port(), str(tmp_path)), nprocs=2, join=True)
    a, b = torch.load(tmp_path / "rank0.pt"), torch.load(tmp_path / "rank1.pt")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert a["codebooks.0.inited"].item() == 1
