"""``neurocodec train`` / ``neurocodec export`` argparse hooks: happy path and error paths."""

from __future__ import annotations


import pytest
import torch

from neurocodec.cli import _Parser
from neurocodec.errors import UserError, WeightsError
from neurocodec.train.checkpoint import latest_checkpoint, load_checkpoint
from neurocodec.train.cli import add_export_parser, add_train_parser
from neurocodec.train.errors import RecipeError, TrainingDiverged
from neurocodec.train.export import load_exported


def run_cli(argv: list[str]) -> int:
    p = _Parser(prog="neurocodec")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)
    add_train_parser(sub)
    add_export_parser(sub)
    args = p.parse_args(argv)
    return args.func(args)


def test_train_resume_and_export_through_the_cli(tmp_path, manifest, capsys):
    run = str(tmp_path / "run")
    base = ["train", "tiny", "--data", str(manifest), "--out", run, "-q", "--no-quality"]
    assert run_cli(base + ["--steps", "4", "--bitrate", "12", "--set", "train.log_every=2",
                           "--set", "model.channels=4"]) == 0
    state = load_checkpoint(latest_checkpoint(run))
    assert state["step"] == 4 and state["recipe"]["model"]["bitrate_kbps"] == 12.0
    assert state["recipe"]["model"]["channels"] == 4
    assert state["meta"]["commands"][0].startswith(f"neurocodec train tiny --data {manifest} --out {run}")
    assert "trained tiny to step 4/4" in capsys.readouterr().err
    # resume: the stored recipe is kept; only the step budget grows
    assert run_cli(base + ["--steps", "6", "--resume"]) == 0
    state = load_checkpoint(latest_checkpoint(run))
    assert state["step"] == 6 and state["recipe"]["model"]["channels"] == 4 and len(state["meta"]["commands"]) == 2
    with pytest.raises(RecipeError, match="cannot change model.channels"):
        run_cli(base + ["--steps", "8", "--resume", "--set", "model.channels=5"])
    assert run_cli(["export", run, "--name", "tiny-test", "--dest", str(tmp_path / "w")]) == 0
    w = load_exported(tmp_path / "w" / "tiny-test")
    assert w.config["bitrate_kbps"] == 12.0 and w.training["step"] == 6
    assert torch.equal(w.state_dict["enc.0.weight"], state["model"]["enc.0.weight"])


@pytest.mark.parametrize("argv, fragment", [
    (["train", "nosuch", "--data", "{m}", "--out", "{o}"], "unknown recipe 'nosuch'"),
    (["train", "tiny", "--data", "{t}/missing.jsonl", "--out", "{o}"], "data manifest not found"),
    (["train", "tiny", "--data", "{m}", "--out", "{o}", "--set", "wings=2"], "unknown setting 'wings'"),
    (["train", "tiny", "--data", "{m}", "--out", "{o}", "--set", "train.lr"], "bad --set 'train.lr'"),
    (["train", "tiny", "--data", "{m}", "--out", "{o}", "--set", "train.batch_size=many"], "expected an integer"),
    (["train", "tiny", "--data", "{m}", "--out", "{o}", "--steps", "0"], "train.steps must be at least 1"),
    (["train", "tiny", "--data", "{m}", "--out", "{o}", "--resume"], "no checkpoint"),
    (["train", "tiny", "--data", "{m}", "--out", "{o}", "--set", "train.batch_size=64"], "fewer than one batch"),
    (["train", "tiny", "--out", "{o}"], "--data"),
    (["train", "tiny", "--data", "{m}", "--out", "{o}", "--device", "tpu"], "invalid choice"),
    (["export", "{t}/norun", "--name", "x"], "run directory not found"),
    (["export", "{t}", "--name", "x"], "no checkpoint"),
    (["export", "{t}", "--name", "x", "--trim-rate", "--trim-statistic", "median"], "invalid choice"),
])
def test_bad_arguments_are_one_line_user_errors(tmp_path, manifest, argv, fragment):
    argv = [a.format(m=manifest, o=tmp_path / "run", t=tmp_path) for a in argv]
    with pytest.raises(UserError) as e:
        run_cli(argv)
    assert fragment in str(e.value) and "\n" not in str(e.value) and e.value.exit_code == 2


def test_cuda_request_without_a_gpu_is_a_user_error(tmp_path, manifest):
    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present")
    with pytest.raises(UserError, match="no CUDA GPU"):
        run_cli(["train", "tiny", "--data", str(manifest), "--out", str(tmp_path / "r"), "--device", "cuda", "-q"])


def test_divergence_through_the_cli_is_exit_status_2(tmp_path, manifest):
    with pytest.raises(TrainingDiverged) as e:
        run_cli(["train", "tiny", "--data", str(manifest), "--out", str(tmp_path / "r"), "-q", "--no-quality",
                 "--set", "model.nan_at_step=3", "--set", "train.ckpt_every=2"])
    assert e.value.exit_code == 2 and "step_00000002.pt" in str(e.value)


def test_bitrate_needs_a_bitrate_field(tmp_path, manifest):
    from dataclasses import dataclass

    from _tiny import build_tiny
    from neurocodec.train.recipe import register_recipe, unregister_recipe

    @dataclass
    class NoRate:
        sample_rate: int = 16000

    register_recipe("norate", NoRate, build_tiny, replace=True)
    try:
        with pytest.raises(RecipeError, match="has no bitrate setting"):
            run_cli(["train", "norate", "--data", str(manifest), "--out", str(tmp_path / "r"), "--bitrate", "8"])
    finally:
        unregister_recipe("norate")


def test_export_of_an_unfinished_run_needs_allow_incomplete(tmp_path, manifest):
    run = str(tmp_path / "run")
    from _tiny import TinyDataset
    from neurocodec.train.recipe import make_recipe
    from neurocodec.train.trainer import Trainer

    Trainer(make_recipe("tiny", ["train.steps=6"]), run, TinyDataset(48, 256), progress=False,
            tensorboard=False).fit(until=2)
    with pytest.raises(WeightsError, match="--allow-incomplete"):
        run_cli(["export", run, "--name", "x", "--dest", str(tmp_path / "w")])
    assert run_cli(["export", run, "--name", "x", "--dest", str(tmp_path / "w"), "--allow-incomplete",
                    "--fp16"]) == 0
