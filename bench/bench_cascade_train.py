"""Training-step time of one CMRL/CQ component autoencoder (zhen2019 Table 1), fp32 vs bf16.

One step = forward + backward + Adam on a batch of 160 frames of 512 samples (what a batch of
32 segments of 2048 samples gives).  bf16 runs the convolutions under CPU autocast (oneDNN;
AMX/AVX512-BF16 where the CPU has them), as ``--set amp=bf16`` does in ``neurocodec train``.

    python bench/bench_cascade_train.py [--threads 1 2] [--steps 5]
"""

from __future__ import annotations

import argparse
import time

import torch

from neurocodec.nn.cmrl_blocks import AutoencoderConfig, ComponentAutoencoder


def seconds_per_step(threads: int, bf16: bool, steps: int, frames: int = 160) -> float:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = ComponentAutoencoder(AutoencoderConfig())
    opt = torch.optim.Adam(model.parameters(), 1e-4)
    x = torch.randn(frames, 1, 512)

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            y = model(x)
        loss = (y.float() - x).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    for _ in range(2):  # warm-up (oneDNN primitive creation)
        step()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - t) / steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--steps", type=int, default=5)
    args = ap.parse_args()
    print(f"{'threads':>7} {'precision':>9} {'s/step':>7} {'frames/s':>8}")
    for threads in args.threads:
        for bf16 in (False, True):
            s = seconds_per_step(threads, bf16, args.steps)
            print(f"{threads:>7} {'bf16' if bf16 else 'fp32':>9} {s:7.3f} {160 / s:8.0f}")


if __name__ == "__main__":
    main()
