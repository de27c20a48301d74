"""Export: safetensors + config.json + training.json + model card, and load_exported."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch
from safetensors import safe_open

from _tiny import NativeTinyCodec, TinyCodec, TinyConfig, TinyDataset
from neurocodec.errors import WeightsError
from neurocodec.train.checkpoint import load_checkpoint
from neurocodec.train.errors import RecipeError
from neurocodec.train.export import export_run, load_exported
from neurocodec.train.recipe import make_recipe
from neurocodec.train.trainer import Trainer


@pytest.fixture
def run(tmp_path, manifest):
    recipe = make_recipe("tiny", ["train.steps=6", "train.val_every=6", "model.channels=6"])
    tr = Trainer(recipe, tmp_path / "run", TinyDataset(48, 256), TinyDataset(4, 256, seed=1), progress=False,
                 tensorboard=False, command="neurocodec train tiny --data m --out run", manifest=manifest,
                 quality_metrics={"pesq_wb": lambda ref, deg, sr: 3.25})
    res = tr.fit()
    return tmp_path / "run", res, tr


def test_export_writes_loadable_weights_and_a_card(tmp_path, run, manifest):
    run_dir, res, tr = run
    out = export_run(run_dir, "tiny-16k", tmp_path / "weights")
    assert out.directory == tmp_path / "weights" / "tiny-16k" and out.step == 6 and out.dtype == "float32"
    assert sorted(p.name for p in out.directory.iterdir()) == ["MODEL_CARD.md", "config.json", "model.safetensors",
                                                               "training.json"]
    w = load_exported(out.directory)
    ckpt = load_checkpoint(res.checkpoint)
    assert w.state_dict.keys() == ckpt["model"].keys()
    for k, v in ckpt["model"].items():
        assert torch.equal(w.state_dict[k], v)
    # a codec rebuilds itself from config.json alone, without importing train
    model = TinyCodec(TinyConfig(**json.loads((out.directory / "config.json").read_text())))
    model.load_state_dict(w.state_dict, strict=True)
    assert w.config["channels"] == 6 and w.training["recipe"]["name"] == "tiny"
    x = torch.from_numpy(TinyDataset(1, 256)[0])[None]
    with torch.no_grad():
        assert torch.equal(model.reconstruct(x), tr.model.eval().reconstruct(x))
    card = w.card
    sha = hashlib.sha256(manifest.read_bytes()).hexdigest()
    for needle in (sha, str(manifest), "| training steps | 6 (complete) |", "neurocodec train tiny --data m --out run",
                   str(torch.__version__), "| val/pesq_wb | 3.25 |", "loss/mse", "CPU",
                   hashlib.sha256((out.directory / "model.safetensors").read_bytes()).hexdigest()):
        assert needle in card, needle
    with safe_open(str(out.directory / "model.safetensors"), framework="pt") as f:
        assert f.metadata()["recipe"] == "tiny"


def test_fp16_export_is_close_and_loads_as_float32(tmp_path, run):
    run_dir, res, _ = run
    out = export_run(run_dir, "tiny-half", tmp_path / "w", fp16=True)
    with safe_open(str(out.directory / "model.safetensors"), framework="pt") as f:
        assert all(f.get_tensor(k).dtype == torch.float16 for k in f.keys())
    w = load_exported(out.directory / "model.safetensors")
    ref = load_checkpoint(res.checkpoint)["model"]
    err = max(float((w.state_dict[k] - ref[k]).abs().max()) for k in ref)
    assert w.dtype == "float16" and all(v.dtype == torch.float32 for v in w.state_dict.values())
    assert 0 < err <= 1e-3 and err == pytest.approx(out.max_abs_error)
    assert "float16 (max abs rounding error" in w.card


def test_export_error_paths(tmp_path, run):
    run_dir, _, _ = run
    export_run(run_dir, "same", tmp_path / "w")
    with pytest.raises(WeightsError, match="already exists; pass --force"):
        export_run(run_dir, "same", tmp_path / "w")
    export_run(run_dir, "same", tmp_path / "w", force=True)
    assert sorted(p.name for p in (tmp_path / "w").iterdir()) == ["same"]  # no temporary leftovers
    with pytest.raises(RecipeError, match="--name"):
        export_run(run_dir, "../evil", tmp_path / "w")
    with pytest.raises(WeightsError, match="run directory not found"):
        export_run(tmp_path / "nope", "x", tmp_path / "w")
    with pytest.raises(WeightsError, match="no exported weights"):
        load_exported(tmp_path / "w" / "missing")


@pytest.mark.parametrize("fp16", [False, True])
def test_models_with_save_pretrained_write_their_own_format(tmp_path, fp16):
    recipe = make_recipe("tiny-native", ["train.steps=3"])
    tr = Trainer(recipe, tmp_path / "run", TinyDataset(48, 256), progress=False, tensorboard=False)
    tr.fit()
    out = export_run(tmp_path / "run", "native", tmp_path / "w", fp16=fp16)
    with safe_open(str(out.directory / "model.safetensors"), framework="pt") as f:
        assert f.metadata()["format"] == "tiny-native"
        assert f.get_tensor("enc.0.weight").dtype == (torch.float16 if fp16 else torch.float32)
    model = NativeTinyCodec.from_pretrained(out.directory / "model.safetensors")  # the codec's own loader
    w = load_exported(out.directory)
    assert w.dtype == ("float16" if fp16 else "float32") and w.training["weights_writer"].startswith("NativeTiny")
    for k, v in tr.model.state_dict().items():
        assert torch.equal(model.state_dict()[k], w.state_dict[k])
        if fp16:
            assert torch.allclose(model.state_dict()[k], v, atol=1e-3)
        else:
            assert torch.equal(model.state_dict()[k], v)


def test_incomplete_runs_need_a_flag(tmp_path):
    recipe = make_recipe("tiny", ["train.steps=10"])
    Trainer(recipe, tmp_path / "run", TinyDataset(48, 256), progress=False, tensorboard=False).fit(until=4)
    with pytest.raises(WeightsError, match="stopped at step 4 of 10"):
        export_run(tmp_path / "run", "x", tmp_path / "w")
    out = export_run(tmp_path / "run", "x", tmp_path / "w", allow_incomplete=True)
    assert "incomplete (4 of 10 steps)" in (out.directory / "MODEL_CARD.md").read_text()
