"""train.keep_best: the checkpoint of the best validation metric is kept apart from pruning and
exported with ``--checkpoint best``."""

from __future__ import annotations

import pytest
import torch

from _tiny import TinyCodec, TinyDataset
from neurocodec.errors import WeightsError
from neurocodec.train.checkpoint import list_checkpoints, load_checkpoint
from neurocodec.train.errors import RecipeError
from neurocodec.train.export import export_run, load_exported
from neurocodec.train.recipe import make_recipe
from neurocodec.train.trainer import Trainer


@pytest.fixture
def scripted(monkeypatch):
    """validation_step returns the next value of ``values`` as val/score."""
    values: list[float] = []

    def validation_step(self, batch):
        return {"val/score": values.pop(0)}

    monkeypatch.setattr(TinyCodec, "validation_step", validation_step)
    return values


def _fit(run_dir, steps, settings=(), resume=False):
    recipe = make_recipe("tiny", [f"train.steps={steps}", "train.val_every=1", "train.val_batches=1",
                                  "train.keep_last=1", "train.ckpt_every=1", *settings])
    return Trainer(recipe, run_dir, TinyDataset(16, recipe.train.segment_samples), TinyDataset(8, 256, seed=1),
                   resume=resume, progress=False, tensorboard=False, command="pytest",
                   quality_metrics={}).fit()


def test_best_checkpoint_survives_pruning_and_follows_resumes(tmp_path, scripted):
    run = tmp_path / "run"
    scripted[:] = [1.0, 3.0, 2.0]
    _fit(run, 3, ["train.keep_best=val/score"])
    assert [p.name for p in list_checkpoints(run)] == ["step_00000003.pt"]
    best = load_checkpoint(run / "checkpoints" / "best.pt")
    assert best["step"] == 2 and best["metrics"]["best"] == {"metric": "val/score", "value": 3.0, "step": 2}
    # a resumed run compares with the best so far, stored in its checkpoints
    scripted[:] = [2.5, 2.9]
    _fit(run, 5, ["train.keep_best=val/score"], resume=True)
    assert load_checkpoint(run / "checkpoints" / "best.pt")["step"] == 2
    scripted[:] = [3.5]
    _fit(run, 6, ["train.keep_best=val/score"], resume=True)
    assert load_checkpoint(run / "checkpoints" / "best.pt")["step"] == 6


def test_min_mode_and_no_metric_no_file(tmp_path, scripted):
    scripted[:] = [1.0, 0.5, 0.7]
    _fit(tmp_path / "a", 3, ["train.keep_best=val/score", "train.keep_best_mode=min"])
    assert load_checkpoint(tmp_path / "a" / "checkpoints" / "best.pt")["step"] == 2
    scripted[:] = [1.0, 0.5]
    _fit(tmp_path / "b", 2)  # keep_best unset: no best.pt
    assert not (tmp_path / "b" / "checkpoints" / "best.pt").exists()
    with pytest.raises(WeightsError, match="keep_best"):
        export_run(tmp_path / "b", "x", tmp_path / "w", checkpoint="best")


def test_export_best(tmp_path, scripted):
    scripted[:] = [1.0, 3.0, 2.0]
    _fit(tmp_path / "run", 3, ["train.keep_best=val/score"])
    out = export_run(tmp_path / "run", "tiny-best", tmp_path / "w", checkpoint="best")
    assert out.step == 2
    best = load_checkpoint(tmp_path / "run" / "checkpoints" / "best.pt")
    w = load_exported(out.directory)
    assert all(torch.equal(w.state_dict[k], v) for k, v in best["model"].items())
    assert w.training["checkpoint"] == "best.pt"
    # a best checkpoint of a run that has not finished is incomplete like any other
    scripted[:] = [1.0, 3.0, 2.0]
    _fit(tmp_path / "part", 6, ["train.keep_best=val/score", "train.max_seconds=1e-9"])
    with pytest.raises(WeightsError, match="allow-incomplete"):
        export_run(tmp_path / "part", "x", tmp_path / "w", checkpoint="best")


@pytest.mark.parametrize("setting", ["train.keep_best=pesq_wb", "train.keep_best_mode=up"])
def test_bad_settings(setting):
    with pytest.raises(RecipeError):
        make_recipe("tiny", [setting])
