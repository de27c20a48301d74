"""The `data build` / `data index` argparse hooks and handlers."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import soundfile as sf

from neurocodec.data.commands import add_data_parser
from neurocodec.errors import UserError


def _parser():
    p = argparse.ArgumentParser(prog="neurocodec")
    sub = p.add_subparsers(dest="command")
    add_data_parser(sub)
    return p


def test_build_arguments_parse():
    a = _parser().parse_args(["data", "build", "--out", "c", "--sample-rate", "48000", "--hours", "2",
                              "--seed", "3", "--jobs", "2", "--sources", "speech-real", "mixture"])
    assert (a.out, a.sample_rate, a.hours, a.seed, a.jobs) == ("c", 48000, 2.0, 3, 2)
    assert a.sources == ["speech-real", "mixture"] and a.func.__name__ == "cmd_build"


def test_data_needs_a_subcommand():
    with pytest.raises(SystemExit):
        _parser().parse_args(["data"])


def test_build_handler_rejects_bad_sample_rate(tmp_path):
    a = _parser().parse_args(["data", "build", "--out", str(tmp_path / "c"), "--sample-rate", "44100", "-q"])
    with pytest.raises(UserError, match="44100"):
        a.func(a)


def test_build_handler_rejects_unknown_source(tmp_path):
    a = _parser().parse_args(["data", "build", "--out", str(tmp_path / "c"), "--sources", "radio", "-q"])
    with pytest.raises(UserError, match="radio"):
        a.func(a)


def test_index_handler_writes_manifest(tmp_path, capsys):
    for spk in ("p225", "p226", "p227"):
        (tmp_path / "wav48" / spk).mkdir(parents=True)
        sf.write(str(tmp_path / "wav48" / spk / f"{spk}_001.wav"), np.zeros(1600, dtype=np.float32), 16000)
    out = tmp_path / "m.jsonl"
    a = _parser().parse_args(["data", "index", str(tmp_path / "wav48"), "--out", str(out), "-q",
                              "--valid", "0.3", "--test", "0.3"])
    assert a.func(a) == 0
    assert out.is_file() and len(out.read_text().splitlines()) == 3
    assert "3 files" in capsys.readouterr().out


def test_index_handler_missing_dir(tmp_path):
    a = _parser().parse_args(["data", "index", str(tmp_path / "nope"), "-q"])
    with pytest.raises(UserError, match="not found"):
        a.func(a)
