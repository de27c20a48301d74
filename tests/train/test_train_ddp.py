"""DDP through ``torchrun``: two CPU processes (gloo) end with identical weights; only rank 0 writes."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

HERE = Path(__file__).resolve().parent
SRC = HERE.parents[1] / "src"

SCRIPT = textwrap.dedent("""
    import os, sys
    import torch
    from _tiny import TinyDataset, build_tiny, register_tiny
    from neurocodec.train.recipe import make_recipe
    from neurocodec.train.trainer import Trainer

    run, out = sys.argv[1], sys.argv[2]
    register_tiny()
    recipe = make_recipe("tiny", ["train.steps=6", "model.two_phases=true", "train.ckpt_every=2",
                                  "train.log_every=2", "train.val_every=3", "train.keep_last=2"])
    torch.manual_seed(recipe.train.seed)
    init = build_tiny(recipe.model).state_dict()
    tr = Trainer(recipe, run, TinyDataset(48, 256), TinyDataset(6, 256, seed=1), progress=False,
                 tensorboard=False)
    res = tr.fit()
    torch.save({"init": init, "final": tr.model.state_dict(), "phases": tr.model.phase_names,
                "world": int(os.environ["WORLD_SIZE"]), "step": res.step}, f"{out}/rank{os.environ['RANK']}.pt")
""")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_gloo_processes_hold_identical_weights(tmp_path):
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or shutil.which("torchrun")
    if torchrun is None:
        pytest.skip("torchrun is not installed next to the Python interpreter")
    script = tmp_path / "ddp_train.py"
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
    assert r0["world"] == r1["world"] == 2 and r0["step"] == r1["step"] == 6
    assert r0["phases"] == r1["phases"] == ["encoder", "joint"]
    for k in r0["final"]:
        assert torch.equal(r0["final"][k], r1["final"][k]), k
        assert torch.equal(r0["init"][k], r1["init"][k]), k
    # phase 1 trains only the encoder, phase 2 everything: every tensor moved
    assert all(not torch.equal(r0["init"][k], r0["final"][k]) for k in r0["final"])
    # rank 0 alone wrote the checkpoints and logs
    ckpts = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    assert ckpts == ["step_00000004.pt", "step_00000006.pt"]
    state = torch.load(tmp_path / "run" / "checkpoints" / "step_00000006.pt", weights_only=True)
    assert len(state["rng"]) == 2 and state["meta"]["world_size"] == 2
    assert not torch.equal(state["rng"][0]["torch"], state["rng"][1]["torch"])  # per-rank noise streams
