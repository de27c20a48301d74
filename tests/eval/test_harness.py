import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from neurocodec.cli import main
from neurocodec.eval.harness import EvalItem, find_items, load_results, plan_conditions, run_evaluation
from neurocodec.errors import UserError


@pytest.fixture
def data_dir(tmp_path):
    d = tmp_path / "data"
    (d / "spk1").mkdir(parents=True)
    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000
    for i in range(2):
        x = 0.3 * np.sin(2 * np.pi * (200 + 100 * i) * t) + 0.01 * rng.standard_normal(t.size)
        sf.write(d / "spk1" / f"f{i}.wav", x, 16000)
    return d


def test_find_items_folder_and_manifest(data_dir, tmp_path):
    items = find_items(data_dir)
    assert [i.key for i in items] == ["spk1/f0.wav", "spk1/f1.wav"]
    from neurocodec.data.index import index_folder

    man = index_folder(data_dir, out=tmp_path / "m.jsonl", split_by="file", valid=0.0, test=0.5)
    test_keys = {r.path for r in man.filter(split="test").records}
    found = find_items(tmp_path / "m.jsonl", split="test")
    assert test_keys and {i.key for i in found} == test_keys
    assert all(Path(i.path).exists() for i in found)
    with pytest.raises(UserError):
        find_items(tmp_path / "nothing-here")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UserError):
        find_items(empty)


def test_plan_maps_ladders_to_nearest_rung():
    conds = plan_conditions(["pcm", "mdct"], [9, 16, 40])
    labels = [c.label for c in conds]
    assert labels.count("pcm@256") == 1  # single-rate codec kept once
    assert "mdct@9" in labels and "mdct@16" in labels and "mdct@40" not in labels  # out of range skipped


def test_run_and_resume(data_dir, tmp_path):
    from neurocodec.eval.harness import Condition

    items = find_items(data_dir)
    out = tmp_path / "rep"
    cond = plan_conditions(["pcm"], [256])[0]
    res = run_evaluation([cond], items, out, metrics=["snr", "mel_distance"], progress=False)
    assert len(res) == 2
    assert all(r.measured_kbps > 256 and r.metrics["snr"] > 40 for r in res)
    n_lines = len((out / "results.jsonl").read_text().splitlines())
    again = run_evaluation([cond], items, out, metrics=["snr", "mel_distance"], progress=False)
    assert len(again) == 2 and len((out / "results.jsonl").read_text().splitlines()) == n_lines
    # results recorded with another codec configuration (e.g. older weights) are not reused
    log = out / "results.jsonl"
    lines = log.read_text().splitlines()
    lines[0] = lines[0].replace(cond.config_hash, "0badc0de")
    log.write_text("\n".join(lines) + "\n")
    redone = run_evaluation([cond], items, out, metrics=["snr", "mel_distance"], progress=False)
    assert len(redone) == 2 and {r.config_hash for r in redone} == {cond.config_hash}
    assert len(log.read_text().splitlines()) == n_lines + 1
    # a half-written last line (interrupted run) is ignored, and the next result starts a new line
    with open(log, "a") as f:
        f.write('{"codec": "pcm", "bit')
    assert len(load_results(log)) == 3
    lines = log.read_text().splitlines()
    log.write_text("\n".join(lines[:-2] + [lines[-1]]))  # drop a finished line, keep the torn one
    run_evaluation([cond], items, out, metrics=["snr", "mel_distance"], progress=False)
    assert len(load_results(log)) == 3


def test_eval_command_writes_report(data_dir, tmp_path, capsys):
    out = tmp_path / "rep"
    code = main(["eval", "--codecs", "pcm,mdct", "--bitrates", "8,16", "--data", str(data_dir), "--out", str(out),
                 "--metrics", "snr,si_snr", "-q", "--examples", "1"])
    printed = capsys.readouterr().out
    assert code == 0
    assert printed.startswith("| codec | nominal kbps | measured kbps | snr | si_snr |")
    for f in ["results.csv", "summary.json", "summary.md", "index.html", "plots/snr.png", "plots/si_snr.png",
              "spectrograms/spk1__f0.png", "audio/spk1__f0.reference.wav"]:
        assert (out / f).exists(), f
    summary = json.loads((out / "summary.json").read_text())
    conds = {(c["codec"], c["bitrate"]) for c in summary["conditions"]}
    assert conds == {("pcm", 256.0), ("mdct", 8.0), ("mdct", 16.0)}
    html = (out / "index.html").read_text()
    assert "<audio" in html and "plots/snr.png" in html


def test_eval_command_errors(data_dir, tmp_path, capsys):
    base = ["eval", "--data", str(data_dir), "--out", str(tmp_path / "r"), "-q"]
    assert main(base + ["--codecs", "nope", "--bitrates", "16"]) == 2
    assert main(base + ["--codecs", "pcm", "--bitrates", "16", "--metrics", "bogus"]) == 2
    assert main(base + ["--codecs", "pcm", "--bitrates", "x"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("neurocodec: error:") == 3
