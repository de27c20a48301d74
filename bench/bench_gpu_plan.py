"""Cost of one training step of each GPU-plan job (scripts/gpu_plan/*.yaml) on this machine.

    python bench/bench_gpu_plan.py [--only cq-16k,cmrl-15.85k] [--steps 5] [--batch 32] [--data PACK]

For each job: the recipe as the plan builds it (bf16 autocast, one torch thread, the plan's
overrides), its init weights, batches of the audio pack (random crops; noise when no pack is
given), Adam over the phase's parameters as the trainer builds it.  Prints per job the steady
wall seconds per step, the *process CPU* seconds per step (what one idle core would take: robust
to other load on a shared machine), and the number of leaf ATen operations in one step (each a
kernel launch on a GPU: the count that bounds a small model's GPU step time).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def _gpu_train():
    spec = importlib.util.spec_from_file_location("_gpu_train", ROOT / "scripts" / "gpu_train.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="cq-16k,cmrl-15.85k")
    ap.add_argument("--steps", type=int, default=5, help="timed steps after one warm-up step")
    ap.add_argument("--batch", type=int, default=None, help="batch size (default: the recipe's)")
    ap.add_argument("--data", default=str(ROOT / "gpu-data" / "speech-16k.ncpack"))
    a = ap.parse_args(argv)
    import torch
    from torch.profiler import ProfilerActivity, profile

    from neurocodec.train.init_weights import init_from
    from neurocodec.train.optim import build_optimizer, select_parameters
    from neurocodec.train.protocol import schedule_phases
    from neurocodec.train.recipe import build_model, make_recipe

    torch.set_num_threads(1)
    gt = _gpu_train()
    jobs = gt.load_plan(only=[s for s in a.only.split(",") if s])
    print(f"torch {torch.__version__}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    print(f"{'job':14s} {'batch':>5s} {'wall s/step':>11s} {'CPU s/step':>10s} {'CPU steps/s':>11s} {'ATen ops':>8s}")
    for job in jobs:
        settings = gt.job_settings(job, [f"train.batch_size={a.batch}"] if a.batch else [], None, None)
        recipe = make_recipe(job.recipe, settings, bitrate_kbps=job.bitrate)
        t = recipe.train
        model = build_model(recipe)
        if job.init:
            init_from(model, ROOT / job.init)
        model.train()
        sp = schedule_phases(model, t.steps, t.phases)[0]
        if hasattr(model, "set_phase"):
            model.set_phase(sp.source if sp.source is not None else sp.phase)
        opt = build_optimizer(select_parameters(model, sp.phase), sp.phase, t)
        if Path(a.data).is_file():
            from neurocodec.data.packed import PackedSegments

            ds = PackedSegments(a.data, t.train_split, t.segment_samples, seed=t.seed, sources=list(t.sources) or None)
            batches = [torch.stack([ds[(k * t.batch_size + i) % len(ds)] for i in range(t.batch_size)])
                       for k in range(a.steps + 1)]
        else:
            batches = [0.1 * torch.randn(t.batch_size, 1, t.segment_samples) for _ in range(a.steps + 1)]

        def step(k: int) -> None:
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=t.amp == "bf16"):
                out = model.training_step(batches[k], k)
            out.total.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)

        step(0)
        w0, c0 = time.perf_counter(), time.process_time()
        for k in range(1, a.steps + 1):
            step(k)
        wall, cpu = (time.perf_counter() - w0) / a.steps, (time.process_time() - c0) / a.steps
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            step(a.steps)
        ops = sum(1 for e in prof.events() if e.name.startswith("aten::")
                  and not any(c.name.startswith("aten::") for c in e.cpu_children))
        print(f"{job.name:14s} {t.batch_size:5d} {wall:11.2f} {cpu:10.2f} {1 / cpu:11.2f} {ops:8d}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
