"""The training loop: learning, logs, checkpoints, exact resumption, divergence stops."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from _tiny import TinyDataset
from neurocodec.errors import UserError
from neurocodec.train.checkpoint import list_checkpoints, load_checkpoint, load_model
from neurocodec.train.errors import RecipeError, TrainingDiverged
from neurocodec.train.recipe import make_recipe, recipe_to_dict
from neurocodec.train.trainer import Trainer


def _fit(run_dir, settings=(), resume=False, val=True, metrics=None, until=None):
    recipe = make_recipe("tiny", list(settings))
    tr = Trainer(recipe, run_dir, TinyDataset(48, recipe.train.segment_samples),
                 TinyDataset(6, recipe.train.segment_samples, seed=1) if val else None,
                 resume=resume, progress=False, tensorboard=False, quality_metrics=metrics, command="pytest")
    return tr, tr.fit(until)


def _weights(state):
    return {k: v.clone() for k, v in state.items()}


def test_training_reduces_the_loss_and_logs(tmp_path):
    tr, res = _fit(tmp_path / "run", ["train.steps=40", "train.log_every=10", "train.ckpt_every=10",
                                      "train.keep_last=2", "train.val_every=20"],
                   metrics={"fake_quality": lambda ref, deg, sr: float(np.mean((ref - deg) ** 2) * 0 + sr)})
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    train_rows = [r for r in rows if "loss/mse" in r]
    assert [r["step"] for r in train_rows] == [10, 20, 30, 40]
    assert train_rows[-1]["loss/mse"] < 0.5 * train_rows[0]["loss/mse"]
    assert {"rate/bits_per_second", "train/lr", "train/steps_per_second", "train/grad_norm"} <= set(train_rows[0])
    val_rows = [r for r in rows if "val/mse" in r]
    assert [r["step"] for r in val_rows] == [20, 40] and val_rows[0]["val/fake_quality"] == 16000
    assert res.step == 40 and res.val_metrics["val/fake_quality"] == 16000 and res.steps_per_second > 0
    assert [p.name for p in list_checkpoints(tmp_path / "run")] == ["step_00000030.pt", "step_00000040.pt"]
    assert res.checkpoint.name == "step_00000040.pt"
    assert json.loads((tmp_path / "run" / "recipe.json").read_text()) == recipe_to_dict(tr.recipe)


def test_checkpoint_alone_rebuilds_the_model(tmp_path):
    tr, res = _fit(tmp_path / "run", ["train.steps=6", "model.channels=5"], val=False)
    loaded = load_model(res.checkpoint)
    assert loaded.recipe == tr.recipe and loaded.step == 6 and loaded.model.config.channels == 5
    for k, v in tr.model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[k], v)
    x = torch.from_numpy(TinyDataset(2, 256)[0])[None]
    with torch.no_grad():
        assert torch.equal(loaded.model.reconstruct(x), tr.model.eval().reconstruct(x))


@pytest.mark.parametrize("settings, first", [
    (["train.steps=12", "train.schedule=cosine", "train.warmup_steps=2", "train.grad_clip=0.5"], 6),
    (["train.steps=12", "model.two_phases=true", "train.val_every=3"], 4),  # resume mid-phase, then switch
    (["train.steps=12", "model.two_phases=true"], 6),  # resume exactly at the phase boundary
])
def test_resume_is_bit_identical(tmp_path, settings, first):
    tr_a, res_a = _fit(tmp_path / "straight", settings)
    _, res_first = _fit(tmp_path / "split", settings, until=first)
    assert res_first.step == first and res_first.checkpoint.name == f"step_{first:08d}.pt"
    tr_b, res_b = _fit(tmp_path / "split", settings, resume=True)
    assert res_b.step == 12
    a, b = tr_a.model.state_dict(), tr_b.model.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    sa, sb = load_checkpoint(res_a.checkpoint), load_checkpoint(res_b.checkpoint)
    for ga, gb in zip(sa["optimizer"]["state"].values(), sb["optimizer"]["state"].values()):
        assert torch.equal(ga["exp_avg"], gb["exp_avg"]) and torch.equal(ga["exp_avg_sq"], gb["exp_avg_sq"])
    assert sa["scheduler"]["last_epoch"] == sb["scheduler"]["last_epoch"]
    assert sa["data"] == sb["data"] and sa["phase"] == sb["phase"]
    assert sb["meta"]["commands"] == ["pytest", "pytest"]
    if "model.two_phases=true" in settings:
        assert tr_b.model.phase_names == (["encoder", "joint"] if first < 6 else ["joint"])


def test_resuming_without_a_checkpoint_or_with_changes_is_refused(tmp_path):
    with pytest.raises(RecipeError, match="no checkpoint"):
        _fit(tmp_path / "empty", ["train.steps=2"], resume=True)
    _fit(tmp_path / "run", ["train.steps=2"], val=False)
    with pytest.raises(RecipeError, match="already holds a run"):
        _fit(tmp_path / "run", ["train.steps=4"], val=False)
    with pytest.raises(RecipeError, match="cannot change model.channels"):
        _fit(tmp_path / "run", ["train.steps=4", "model.channels=3"], resume=True, val=False)
    with pytest.raises(RecipeError, match="already reached step 2"):
        _fit(tmp_path / "run", ["train.steps=2"], resume=True, val=False)


def test_resume_reads_a_setting_added_after_the_run_started_as_its_default(tmp_path):
    run = tmp_path / "run"
    _, res = _fit(run, ["train.steps=2"], val=False)
    state = load_checkpoint(res.checkpoint)
    del state["recipe"]["model"]["nan_at_step"]  # a run from before the setting existed
    torch.save(state, res.checkpoint)
    _, res = _fit(run, ["train.steps=3"], resume=True, val=False)
    assert res.step == 3


@pytest.mark.parametrize("setting, reason", [
    ("model.nan_at_step=7", "loss is nan"),
    ("model.explode_at_step=7", "loss exploded"),
    ("model.grad_nan_at_step=7", "gradients are not finite"),
])
def test_divergence_stops_and_keeps_the_last_good_checkpoint(tmp_path, setting, reason):
    run = tmp_path / "run"
    with pytest.raises(TrainingDiverged) as e:
        _fit(run, ["train.steps=20", "train.ckpt_every=3", "train.explode_window=5", setting], val=False)
    err = e.value
    assert isinstance(err, UserError) and err.exit_code == 2
    msg = str(err)
    assert "\n" not in msg and f"diverged at step 8: {reason}" in msg and "step_00000006.pt" in msg
    assert [p.name for p in list_checkpoints(run)] == ["step_00000003.pt", "step_00000006.pt"]
    assert err.step == 7 and err.checkpoint == run / "checkpoints" / "step_00000006.pt"
    good = load_checkpoint(err.checkpoint)
    assert all(torch.isfinite(v).all() for v in good["model"].values())


def test_divergence_before_any_checkpoint_says_so(tmp_path):
    with pytest.raises(TrainingDiverged, match="no checkpoint was written yet"):
        _fit(tmp_path / "run", ["train.steps=20", "model.nan_at_step=0"], val=False)


@pytest.mark.slow
def test_torch_compile_option_trains(tmp_path):
    _, res = _fit(tmp_path / "run", ["train.steps=4", "train.compile=true"], val=False)
    assert res.step == 4


def test_tensorboard_gets_scalars_audio_and_the_recipe(tmp_path):
    pytest.importorskip("tensorboard", reason="tensorboard is not installed (pip install tensorboard)")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    recipe = make_recipe("tiny", ["train.steps=4", "train.val_every=4", "train.log_every=2"])
    Trainer(recipe, tmp_path / "run", TinyDataset(48, 256), TinyDataset(4, 256, seed=1), progress=True,
            quality_metrics={"pesq_wb": lambda ref, deg, sr: 2.5}).fit()
    ea = EventAccumulator(str(tmp_path / "run" / "tb"), size_guidance={"audio": 0})
    ea.Reload()
    tags = ea.Tags()
    assert {"train/loss", "loss/mse", "rate/bits_per_second", "val/mse", "val/pesq_wb"} <= set(tags["scalars"])
    assert {"audio/0/reference", "audio/0/decoded", "audio/1/decoded"} <= set(tags["audio"])
    assert [e.step for e in ea.Scalars("train/loss")] == [2, 4] and ea.Scalars("val/pesq_wb")[0].value == 2.5
