"""Integer tensors of a checkpoint stored narrow and given back their own type (weights_file)."""

import json

import pytest
import torch

from neurocodec.codecs.cmrl import CmrlCodec
from neurocodec.codecs.weights_file import INT_DTYPES_KEY, compact_integers, restore_integers
from neurocodec.errors import WeightsError


def test_compact_picks_the_narrowest_type_that_holds_the_values_and_restore_undoes_it():
    state = {"counts": torch.tensor([0, 200, 255]), "cdf": torch.tensor([0, 1 << 24]),
             "signed": torch.tensor([-3, 1000], dtype=torch.int32), "big": torch.tensor([1 << 40]),
             "w": torch.randn(3, dtype=torch.float16), "lengths": torch.tensor([1, 20], dtype=torch.uint8)}
    small, raw = compact_integers(state)
    assert small["counts"].dtype == torch.uint8
    assert small["cdf"].dtype == torch.int32
    assert small["signed"].dtype == torch.int16
    assert small["big"].dtype == torch.int64 and small["w"] is state["w"] and small["lengths"] is state["lengths"]
    assert json.loads(raw) == {"counts": "int64", "cdf": "int64", "signed": "int32"}
    back = restore_integers(dict(small), {INT_DTYPES_KEY: raw})
    for name, t in state.items():
        assert back[name].dtype == t.dtype and torch.equal(back[name], t)


def test_restore_leaves_old_files_alone_and_rejects_a_malformed_map():
    state = {"a": torch.tensor([1], dtype=torch.uint8)}
    assert restore_integers(dict(state), {})["a"].dtype == torch.uint8
    for bad in ('{"a": "float32"}', '{"a": "no_such"}', '{"missing": "int64"}', "not json"):
        with pytest.raises(WeightsError, match="integer-type map"):
            restore_integers(dict(state), {INT_DTYPES_KEY: bad})


def test_cascade_checkpoint_round_trip_keeps_the_state_and_its_digest(tmp_path):
    model = CmrlCodec.for_bitrate(15.85) if hasattr(CmrlCodec, "for_bitrate") else CmrlCodec()
    path = tmp_path / "m.safetensors"
    model.save_pretrained(path)
    back = CmrlCodec.from_pretrained(path)
    assert back.weights_digest() == model.weights_digest()
    for name, t in model.state_dict().items():
        if not name.startswith("rate_steer."):
            assert back.state_dict()[name].dtype == t.dtype


def test_read_format_names_what_is_wrong_in_one_line(tmp_path):
    from dataclasses import dataclass

    from safetensors.torch import save_file

    from neurocodec.codecs.weights_file import dataclass_from_json, read_format

    with pytest.raises(WeightsError, match="checkpoint not found"):
        read_format(tmp_path / "none.safetensors", "fmt", "a test checkpoint")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not safetensors")
    with pytest.raises(WeightsError, match="is not a safetensors checkpoint"):
        read_format(bad, "fmt", "a test checkpoint")
    other = tmp_path / "other.safetensors"
    save_file({"a": torch.zeros(2)}, str(other), metadata={"format": "other"})
    with pytest.raises(WeightsError, match="is not a test checkpoint of this package .format 'other'."):
        read_format(other, "fmt", "a test checkpoint")
    save_file({"a": torch.ones(2)}, str(other), metadata={"format": "fmt", "config": "{}"})
    state, meta = read_format(other, "fmt", "a test checkpoint")
    assert torch.equal(state["a"], torch.ones(2)) and meta["config"] == "{}"

    @dataclass(frozen=True)
    class Cfg:
        ratios: tuple = (1,)
        n: int = 0

    assert dataclass_from_json(Cfg, {"ratios": [8, 5], "n": 3, "unknown": 1}) == Cfg((8, 5), 3)
