"""Export of a cascade codec: entropy tables fitted on the training files, real file sizes measured."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import soundfile as sf

from neurocodec.codecs.cmrl import CmrlCodec, CmrlConfig
from neurocodec.data.manifest import Manifest, SegmentRecord
from neurocodec.nn.cmrl_blocks import AutoencoderConfig
from neurocodec.train.cli import default_build_data
from neurocodec.train.errors import RecipeError
from neurocodec.train.export import export_run
from neurocodec.train.recipe import make_recipe, register_recipe, unregister_recipe
from neurocodec.train.trainer import Trainer

TINY = AutoencoderConfig(channels=8, bottleneck_channels=4)


def build_tiny_cmrl(cfg: CmrlConfig) -> CmrlCodec:
    return CmrlCodec(replace(cfg, modules=(TINY, TINY)))


@pytest.fixture
def tiny_cmrl_recipe():
    register_recipe("tiny-cmrl", CmrlConfig, build_tiny_cmrl, replace=True,
                    train={"batch_size": 2, "segment_samples": 2048, "log_every": 1, "val_every": 100,
                           "ckpt_every": 100, "threads": 1, "sources": ("speech-real",)})
    yield "tiny-cmrl"
    unregister_recipe("tiny-cmrl")


@pytest.fixture
def speech_manifest(tmp_path):
    rng = np.random.default_rng(0)
    recs = []
    for i, (split, source) in enumerate([("train", "speech-real"), ("train", "speech-real"),
                                         ("train", "music-real"), ("valid", "speech-real")]):
        t = np.arange(16000) / 16000
        x = 0.2 * np.sin(2 * np.pi * (150 + 40 * i) * t) * (1 + np.sin(2 * np.pi * 3 * t)) / 2
        x += 0.01 * rng.standard_normal(t.size)
        sf.write(tmp_path / f"f{i}.flac", x.astype(np.float32), 16000)
        recs.append(SegmentRecord(f"f{i}.flac", 1.0, 16000, source, speaker=f"s{i}", split=split))
    Manifest(recs, tmp_path).save(tmp_path / "manifest.jsonl")
    return tmp_path / "manifest.jsonl"


def test_export_fits_the_entropy_coder_and_measures_files(tmp_path, tiny_cmrl_recipe, speech_manifest):
    recipe = make_recipe(tiny_cmrl_recipe, ["train.steps=2"])
    data = default_build_data(speech_manifest, "train", recipe, 16000)
    assert {r.source for r in data.records} == {"speech-real"}  # train.sources filters the manifest
    Trainer(recipe, tmp_path / "run", data, None, progress=False, tensorboard=False,
            manifest=speech_manifest).fit()
    res = export_run(tmp_path / "run", "tiny-cmrl-15.85k", tmp_path / "w", overrides=["model.entropy_coder=best"])
    training = json.loads((res.directory / "training.json").read_text())
    fit = training["entropy_coder"]
    assert fit["seconds"] == pytest.approx(2.0)  # the two speech-real training files, not the music one
    assert set(fit["entropy_bits"]) == {"module1", "module2"}
    assert res.bitrate["files"] == 1 and res.bitrate["split"] == "valid" and res.bitrate["kbps"] > 0
    assert res.bitrate["mean_file_kbps"] == pytest.approx(res.bitrate["kbps"])  # one file: both statistics agree
    model = CmrlCodec.from_pretrained(res.directory / "model.safetensors")
    assert model.config.entropy_coder == "best" and training["export_overrides"] == ["model.entropy_coder=best"]
    assert int(model.entropy_tables["module1"].pair_counts.sum()) > 0
    card = (res.directory / "MODEL_CARD.md").read_text()
    assert "## Entropy coder" in card and "Real `.ncdc` files of the valid split" in card
    # without the manifest the export cannot fit the tables
    speech_manifest.unlink()
    with pytest.raises(RecipeError, match="--data MANIFEST"):
        export_run(tmp_path / "run", "again", tmp_path / "w")


def test_export_trim_rate_records_the_code_scale(tmp_path, tiny_cmrl_recipe, speech_manifest):
    recipe = make_recipe(tiny_cmrl_recipe, ["train.steps=2"])
    data = default_build_data(speech_manifest, "train", recipe, 16000)
    Trainer(recipe, tmp_path / "run", data, None, progress=False, tensorboard=False,
            manifest=speech_manifest).fit()
    res = export_run(tmp_path / "run", "trimmed", tmp_path / "w", fit_seconds=1.0, trim_rate=True, trim_seconds=1.0)
    training = json.loads((res.directory / "training.json").read_text())
    trim = training["rate_trim"]
    assert res.rate_trim == trim and trim["fit_seconds"] == pytest.approx(1.0)
    assert trim["calibration_seconds"] == pytest.approx(1.0) and len(trim["trials"]) >= 1
    model = CmrlCodec.from_pretrained(res.directory / "model.safetensors")
    assert model.config.code_scale == pytest.approx(trim["code_scale"])
    n = model.config.rate_module  # "auto": the module whose symbols carry the most bits
    assert trim["rate_module"] == n
    assert training["export_overrides"] == [f"model.code_scale={trim['code_scale']!r}", f"model.rate_module={n}"]
    assert training["entropy_coder"]["seconds"] == pytest.approx(1.0)  # the trim's own fit is kept
    assert trim["calibration_split"] == "train"
    # calibrated on the validation split (other speakers): its one file, no training audio skipped
    res = export_run(tmp_path / "run", "trimmed-valid", tmp_path / "w", fit_seconds=1.0, trim_rate=True,
                     trim_seconds=5.0, trim_split="valid")
    assert res.rate_trim["calibration_split"] == "valid" and res.rate_trim["calibration_seconds"] == pytest.approx(1.0)
    assert "of 'valid' audio come out at" in (res.directory / "MODEL_CARD.md").read_text()
    from neurocodec.data.manifest import ManifestError

    with pytest.raises(ManifestError, match="unknown split"):
        export_run(tmp_path / "run", "x", tmp_path / "w", fit_seconds=1.0, trim_rate=True, trim_split="nosuch")
    card = (res.directory / "MODEL_CARD.md").read_text()
    assert "Rate trim: quantizer step `code_scale`" in card and "total bytes over total seconds" in card
    assert trim["statistic"] == "total"  # the default
    # nothing left to calibrate on once the fit takes every training file
    with pytest.raises(RecipeError, match="lower --fit-seconds"):
        export_run(tmp_path / "run", "again", tmp_path / "w", fit_seconds=10.0, trim_rate=True)
    assert not (tmp_path / "w" / "again").exists()


def test_export_fits_ladder_tables_and_rejects_a_mismatched_checkpoint(tmp_path, tiny_cmrl_recipe, speech_manifest):
    """Ladder-step tables are fitted at export (a training checkpoint has none); any other
    missing or extra tensor is a one-line WeightsError."""
    import torch

    from neurocodec.errors import WeightsError
    from neurocodec.train.checkpoint import latest_checkpoint

    recipe = make_recipe(tiny_cmrl_recipe, ["train.steps=2"])
    data = default_build_data(speech_manifest, "train", recipe, 16000)
    Trainer(recipe, tmp_path / "run", data, None, progress=False, tensorboard=False,
            manifest=speech_manifest).fit()
    res = export_run(tmp_path / "run", "lad", tmp_path / "w", overrides=["model.ladder_tables=-4,4"])
    model = CmrlCodec.from_pretrained(res.directory / "model.safetensors")
    assert model.config.ladder_tables == (-4, 4)
    assert all(int(t.pair_counts.sum()) > 0 for d in model.step_tables.values() for t in d.values())
    ckpt = latest_checkpoint(tmp_path / "run")
    state = torch.load(ckpt, weights_only=False)
    del state["model"]["coding_modules.0.quantizer.centroids"]
    torch.save(state, ckpt)
    with pytest.raises(WeightsError, match="missing key.*coding_modules.0.quantizer.centroids"):
        export_run(tmp_path / "run", "broken", tmp_path / "w")
