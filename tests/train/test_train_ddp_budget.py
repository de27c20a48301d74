"""DDP with a wall-clock budget: processes whose clocks disagree still stop at the same step."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from test_train_ddp import HERE, SRC, _free_port

SCRIPT = textwrap.dedent("""
    import os, sys, time
    import torch
    from _tiny import TinyDataset, register_tiny
    from neurocodec.train.recipe import make_recipe
    from neurocodec.train.trainer import Trainer

    class SlowData(TinyDataset):
        def __getitem__(self, i):
            time.sleep(0.01)
            return super().__getitem__(i)

    run, out = sys.argv[1], sys.argv[2]
    register_tiny()
    recipe = make_recipe("tiny", ["train.steps=100000", "train.ckpt_every=100000", "train.log_every=1000",
                                  "train.max_seconds=4", "train.ckpt_every_seconds=1"])
    if os.environ["RANK"] == "1":
        time.sleep(2.5)  # rank 0's budget starts 2.5 s earlier (both wait for each other to join)
    tr = Trainer(recipe, run, SlowData(48, 256), None, progress=False, tensorboard=False)
    res = tr.fit()
    torch.save({"step": res.step, "stopped_by": res.stopped_by, "final": tr.model.state_dict()},
               f"{out}/rank{os.environ['RANK']}.pt")
""")


@pytest.mark.slow  # ~15 s idle, ~50 s on the loaded 2-core VM
def test_ranks_agree_on_the_budget(tmp_path):
    """Without the agreement, rank 0 (whose budget started 2.5 s earlier) would leave the loop
    while rank 1 waits in the next step's all-reduce until the 120 s timeout."""
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or shutil.which("torchrun")
    if torchrun is None:
        pytest.skip("torchrun is not installed next to the Python interpreter")
    script = tmp_path / "ddp_budget.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(SRC), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"}
    for attempt in range(2):  # the free port can be taken between _free_port() and torchrun's bind
        shutil.rmtree(tmp_path / "run", ignore_errors=True)
        cmd = [torchrun, "--nnodes", "1", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
               "--master_port", str(_free_port()), str(script), str(tmp_path / "run"), str(tmp_path)]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        if proc.returncode == 0:
            break
        print(f"torchrun attempt {attempt + 1} failed:\n{proc.stderr[-3000:]}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert r0["stopped_by"] == r1["stopped_by"] == "max_seconds"
    assert r0["step"] == r1["step"] < 100000
    assert all(torch.equal(r0["final"][k], r1["final"][k]) for k in r0["final"])
    ckpts = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    assert ckpts[-1] == f"step_{r0['step']:08d}.pt"
