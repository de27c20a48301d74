"""Wall-clock budget (train.max_seconds) and time-based checkpoints (train.ckpt_every_seconds).

The trainer's clock is replaced by a fake one that the dataset advances by a fixed amount per
item, so the step at which a budget is reached is known exactly."""

from __future__ import annotations

import types

import pytest
import torch

import neurocodec.train.trainer as trainer_module
from _tiny import TinyDataset
from neurocodec.train.checkpoint import list_checkpoints, load_checkpoint
from neurocodec.train.errors import RecipeError
from neurocodec.train.recipe import make_recipe
from neurocodec.train.trainer import Trainer

BATCH = 8
PER_ITEM = 0.125  # fake seconds per dataset item: one step (batch of 8) takes 1 s


class ClockedData(TinyDataset):
    """TinyDataset that advances the fake clock by PER_ITEM on every item."""

    def __init__(self, clock, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.clock = clock

    def __getitem__(self, i):
        self.clock.now += PER_ITEM
        return super().__getitem__(i)


@pytest.fixture
def clock(monkeypatch):
    fake = types.SimpleNamespace(now=1000.0)
    monkeypatch.setattr(trainer_module, "time", types.SimpleNamespace(perf_counter=lambda: fake.now))
    return fake


def _trainer(run_dir, clock, settings, resume=False):
    recipe = make_recipe("tiny", [f"train.batch_size={BATCH}", "train.ckpt_every=1000", *settings])
    return Trainer(recipe, run_dir, ClockedData(clock, 48, recipe.train.segment_samples), None, resume=resume,
                   progress=False, tensorboard=False, command="pytest")


def _steps(run_dir):
    return [int(load_checkpoint(p)["step"]) for p in list_checkpoints(run_dir)]


def test_max_seconds_checkpoints_and_stops_at_the_step_that_reaches_it(tmp_path, clock):
    res = _trainer(tmp_path / "run", clock, ["train.steps=100", "train.max_seconds=4.5"]).fit()
    # 1 fake second per step: after step 5 the session has used 5 s >= 4.5 s
    assert res.step == 5 and res.total_steps == 100 and res.stopped_by == "max_seconds"
    assert _steps(tmp_path / "run") == [5] and res.checkpoint.name == "step_00000005.pt"
    state = load_checkpoint(res.checkpoint)
    assert state["recipe"]["train"]["max_seconds"] == 4.5
    # the run continues from there; a new budget may be given on resume
    res2 = _trainer(tmp_path / "run", clock, ["train.steps=100", "train.max_seconds=2.5"], resume=True).fit()
    assert res2.step == 8 and res2.stopped_by == "max_seconds"
    # without a budget (0) the resumed run goes to train.steps
    res3 = _trainer(tmp_path / "run", clock, ["train.steps=10", "train.max_seconds=0"], resume=True).fit()
    assert res3.step == 10 and res3.stopped_by == "steps"


def test_budget_counts_set_up_time_and_a_run_reaching_its_steps_first_is_not_cut(tmp_path, clock):
    tr = _trainer(tmp_path / "a", clock, ["train.steps=3", "train.max_seconds=1000"])
    res = tr.fit()
    assert res.step == 3 and res.stopped_by == "steps" and _steps(tmp_path / "a") == [3]


def test_ckpt_every_seconds_adds_time_based_checkpoints(tmp_path, clock):
    res = _trainer(tmp_path / "run", clock, ["train.steps=10", "train.ckpt_every_seconds=3",
                                             "train.keep_last=100"]).fit()
    # a checkpoint when 3 fake seconds passed since the last one (steps 3, 6, 9), and the last step
    assert res.step == 10 and _steps(tmp_path / "run") == [3, 6, 9, 10]


def test_both_with_step_interval(tmp_path, clock):
    res = _trainer(tmp_path / "run", clock, ["train.steps=50", "train.ckpt_every=2", "train.ckpt_every_seconds=100",
                                             "train.max_seconds=5", "train.keep_last=100"]).fit()
    assert res.step == 5 and _steps(tmp_path / "run") == [2, 4, 5]


@pytest.mark.parametrize("setting", ["train.max_seconds=-1", "train.ckpt_every_seconds=-0.5",
                                     "train.max_seconds=inf", "train.max_seconds=nan"])
def test_bad_budgets_are_refused(setting):
    with pytest.raises(RecipeError, match="seconds"):
        make_recipe("tiny", [setting])


def test_time_settings_do_not_change_what_is_trained(tmp_path):
    """Same steps with and without a (generous) budget and time checkpoints: identical weights."""
    weights = []
    for i, settings in enumerate([[], ["train.max_seconds=3600", "train.ckpt_every_seconds=3600"]]):
        recipe = make_recipe("tiny", ["train.steps=6", *settings])
        tr = Trainer(recipe, tmp_path / f"r{i}", TinyDataset(48, recipe.train.segment_samples), None,
                     progress=False, tensorboard=False, command="pytest")
        tr.fit()
        weights.append({k: v.clone() for k, v in tr.model.state_dict().items()})
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
