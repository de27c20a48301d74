"""SIGINT/SIGTERM during training: the step finishes, a checkpoint is written, the session stops
and resumes from there (neurocodec.train.stop)."""

from __future__ import annotations

import os
import signal

import pytest

from _tiny import TinyDataset
from neurocodec.train.checkpoint import list_checkpoints, load_checkpoint
from neurocodec.train.recipe import make_recipe
from neurocodec.train.stop import StopRequest
from neurocodec.train.trainer import Trainer

BATCH = 8


class SignallingData(TinyDataset):
    """TinyDataset that sends ``sig`` to this process when item ``at`` is read (once)."""

    def __init__(self, at: int, sig: int, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.at, self.sig, self.reads = at, sig, 0

    def __getitem__(self, i):
        self.reads += 1
        if self.reads == self.at:
            os.kill(os.getpid(), self.sig)
        return super().__getitem__(i)


def _trainer(run_dir, data, resume=False, steps=20):
    recipe = make_recipe("tiny", [f"train.batch_size={BATCH}", "train.ckpt_every=1000", f"train.steps={steps}"])
    return Trainer(recipe, run_dir, data, None, resume=resume, progress=False, tensorboard=False, command="pytest")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_checkpoints_the_step_it_arrives_in_and_stops(tmp_path, sig):
    before = signal.getsignal(sig)
    # item 3 * BATCH + 2 is read during step 4: that step completes and is checkpointed
    res = _trainer(tmp_path / "run", SignallingData(3 * BATCH + 2, sig, 48, 256)).fit()
    assert res.stopped_by == "signal" and res.signal == signal.Signals(sig).name and res.step == 4
    assert [int(load_checkpoint(p)["step"]) for p in list_checkpoints(tmp_path / "run")] == [4]
    assert signal.getsignal(sig) == before  # the process's own handler is back
    res2 = _trainer(tmp_path / "run", TinyDataset(48, 256), resume=True, steps=6).fit()
    assert res2.step == 6 and res2.stopped_by == "steps"


def test_a_second_ctrl_c_interrupts_at_once():
    with StopRequest() as stop:
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.signal == "SIGINT"
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)


def test_disabled_it_leaves_the_handlers_alone():
    before = signal.getsignal(signal.SIGTERM)
    with StopRequest(enabled=False) as stop:
        assert signal.getsignal(signal.SIGTERM) == before and stop.signal is None


@pytest.mark.parametrize("name, status", [("SIGINT", 130), ("SIGTERM", 143), (None, 0)])
def test_train_cli_exits_with_the_signal_status(monkeypatch, tmp_path, capsys, name, status):
    import argparse
    from pathlib import Path

    import neurocodec.train.cli as cli
    import neurocodec.train.trainer as trainer_module
    from neurocodec.train.trainer import TrainResult

    class FakeTrainer:
        def __init__(self, *args, **kwargs):
            pass

        def fit(self):
            return TrainResult(Path(tmp_path), 4, 20, None, 1.0, 4.0, stopped_by="signal" if name else "steps",
                               signal=name)

    monkeypatch.setattr(cli, "build_run", lambda args: (make_recipe("tiny"), None, None))
    monkeypatch.setattr(trainer_module, "Trainer", FakeTrainer)
    args = argparse.Namespace(out=tmp_path, device="cpu", resume=False, no_quality=True, data=None, init=None,
                              quiet=True)
    monkeypatch.setattr(cli, "_command", lambda a: "neurocodec train tiny")
    assert cli.cmd_train(args) == status
    assert ("continue with --resume" in capsys.readouterr().err) == bool(name)
