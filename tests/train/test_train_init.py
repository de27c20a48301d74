"""Warm starts (``train --init``), phase selection (``train.phases``) and CPU bf16 autocast."""

from __future__ import annotations

import pytest
import torch

from _tiny import TinyDataset
from neurocodec.train.checkpoint import load_checkpoint
from neurocodec.train.errors import RecipeError
from neurocodec.train.init_weights import init_from
from neurocodec.train.recipe import build_model, make_recipe
from neurocodec.train.trainer import Trainer


def _fit(run_dir, settings=(), init=None):
    recipe = make_recipe("tiny", list(settings))
    tr = Trainer(recipe, run_dir, TinyDataset(48, recipe.train.segment_samples), None, progress=False,
                 tensorboard=False, command="pytest", init=init)
    return tr, tr.fit()


def test_init_copies_matching_tensors_and_records_the_source(tmp_path):
    src, res = _fit(tmp_path / "a", ["train.steps=4"])
    # channels differ: the convolutions touching them keep their fresh initialisation
    tr, res2 = _fit(tmp_path / "b", ["train.steps=1", "train.lr=1e-12", "model.channels=8"], init=tmp_path / "a")
    meta = load_checkpoint(res2.checkpoint)["meta"]["init"]
    assert meta["source"] == str(res.checkpoint) and meta["loaded"] == len(src.model.state_dict())
    for k, v in src.model.state_dict().items():
        torch.testing.assert_close(tr.model.state_dict()[k], v, atol=1e-9, rtol=0)
    model = build_model(make_recipe("tiny", ["model.channels=5"]))
    rep = init_from(model, res.checkpoint)
    assert rep.mismatched and rep.loaded and "of another shape" in rep.summary()


def test_init_errors_are_recipe_errors(tmp_path):
    model = build_model(make_recipe("tiny"))
    with pytest.raises(RecipeError, match="not found"):
        init_from(model, tmp_path / "nope.pt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RecipeError, match="neither checkpoints"):
        init_from(model, tmp_path / "empty")
    from safetensors.torch import save_file

    save_file({"unrelated": torch.zeros(3)}, str(tmp_path / "x.safetensors"))
    with pytest.raises(RecipeError, match="no tensor"):
        init_from(model, tmp_path / "x.safetensors")


def test_phase_selection_trains_only_the_named_phase(tmp_path):
    tr, res = _fit(tmp_path / "run", ["train.steps=6", "model.two_phases=true", "train.phases=joint"])
    assert tr.model.phase_names == ["joint"] and res.step == 6
    with pytest.raises(RecipeError, match="unknown phase"):
        _fit(tmp_path / "bad", ["train.steps=2", "model.two_phases=true", "train.phases=decoder"])


def test_bf16_autocast_on_cpu_trains(tmp_path):
    tr, res = _fit(tmp_path / "run", ["train.steps=3", "train.amp=bf16"])
    assert res.step == 3
    assert all(p.dtype == torch.float32 for p in tr.model.parameters())  # master weights stay float32
