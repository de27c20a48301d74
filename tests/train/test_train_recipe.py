"""Recipes: registry, typed overrides, YAML files, JSON round trips, config validation."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from _tiny import TinyConfig, build_tiny
from neurocodec.errors import UserError
from neurocodec.train.config import TrainConfig
from neurocodec.train.errors import RecipeError
from neurocodec.train.recipe import (Recipe, apply_overrides, get_recipe, make_recipe, recipe_from_dict,
                                     recipe_names, recipe_to_dict, register_recipe, unregister_recipe)


def test_defaults_come_from_the_registration():
    r = make_recipe("tiny")
    assert isinstance(r.model, TinyConfig)
    assert r.train.batch_size == 8 and r.train.segment_samples == 256 and r.train.lr == 3e-3
    assert r.train.optimizer == "adam"  # untouched TrainConfig default
    assert "tiny" in recipe_names()


def test_overrides_are_converted_to_field_types():
    r = make_recipe("tiny", ["train.lr=2e-5", "steps=100", "channels=4", "model.two_phases=yes",
                             "train.betas=0.5,0.9", "train.sample_rate=none", "compile=true"])
    assert r.train.lr == 2e-5 and isinstance(r.train.lr, float)
    assert r.train.steps == 100 and isinstance(r.train.steps, int)
    assert r.model.channels == 4 and r.model.two_phases is True
    assert r.train.betas == (0.5, 0.9)
    assert r.train.sample_rate is None and r.train.compile is True


@pytest.mark.parametrize("setting, fragment", [
    ("nosuchkey=1", "unknown setting 'nosuchkey'"),
    ("model.nosuch=1", "unknown setting 'model.nosuch'"),
    ("train.steps=1.5", "expected an integer"),
    ("train.lr=fast", "expected a number"),
    ("train.compile=maybe", "expected true or false"),
    ("train.betas=0.9", "expected 2 values"),
    ("justakey", "expected KEY=VALUE"),
    ("train.schedule=exponential", "train.schedule must be one of"),
    ("train.steps=0", "train.steps must be at least 1"),
    ("train.lr_min=1", "lr_min"),
])
def test_bad_overrides_raise_one_line_user_errors(setting, fragment):
    with pytest.raises(RecipeError) as e:
        make_recipe("tiny", [setting])
    assert isinstance(e.value, UserError)
    assert fragment in str(e.value) and "\n" not in str(e.value)


def test_unknown_recipe_lists_known_names():
    with pytest.raises(RecipeError, match=r"unknown recipe 'nope' \(known: .*tiny"):
        get_recipe("nope")


@dataclass
class _SeedConfig:
    seed: int = 1
    sample_rate: int = 8000


def test_ambiguous_key_must_be_qualified():
    register_recipe("seedy", _SeedConfig, build_tiny, replace=True)
    try:
        with pytest.raises(RecipeError, match="ambiguous"):
            make_recipe("seedy", ["seed=3"])
        r = make_recipe("seedy", ["model.seed=3", "train.seed=4"])
        assert (r.model.seed, r.train.seed) == (3, 4)
    finally:
        unregister_recipe("seedy")


def test_registering_a_different_target_under_a_taken_name_fails():
    with pytest.raises(ValueError, match="registered twice"):
        register_recipe("tiny", _SeedConfig, build_tiny)
    with pytest.raises(RecipeError, match="unknown setting"):  # bad defaults fail at registration
        register_recipe("broken", TinyConfig, build_tiny, train={"nosuch": 1})
    assert "broken" not in recipe_names()


def test_yaml_recipe_file(tmp_path):
    f = tmp_path / "r.yaml"
    f.write_text("recipe: tiny\nmodel:\n  channels: 3\ntrain:\n  lr: 1.0e-3\n  betas: [0.8, 0.95]\n")
    r = make_recipe(str(f), ["train.steps=7"])
    assert r.name == "tiny" and r.model.channels == 3 and r.train.lr == 1e-3
    assert r.train.betas == (0.8, 0.95) and r.train.steps == 7
    (tmp_path / "bad.yaml").write_text("model: {channels: 3}\n")
    with pytest.raises(RecipeError, match="recipe: NAME"):
        make_recipe(str(tmp_path / "bad.yaml"))
    with pytest.raises(RecipeError, match="not found"):
        make_recipe(str(tmp_path / "missing.yaml"))


def test_recipe_round_trips_through_plain_data():
    r = make_recipe("tiny", ["channels=5", "train.betas=0.7,0.8", "train.lr=1e-4"])
    d = recipe_to_dict(r)
    assert d["model"]["channels"] == 5 and d["train"]["betas"] == [0.7, 0.8]
    assert d["model_class"].endswith(":TinyConfig")
    back = recipe_from_dict(d)
    assert back == r
    d["model"]["wings"] = 2
    with pytest.raises(RecipeError, match="unknown field"):
        recipe_from_dict(d)


def test_train_config_validation():
    TrainConfig().validate()
    with pytest.raises(RecipeError, match="amp"):
        TrainConfig(amp="fp8").validate()
    with pytest.raises(RecipeError, match="grad_clip"):
        TrainConfig(grad_clip=-1).validate()
    assert apply_overrides(Recipe("tiny", TinyConfig()), {"train.amp": "bf16"}).train.amp == "bf16"
