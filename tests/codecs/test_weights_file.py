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


def test_int8_rows_round_trip_through_a_file(tmp_path):
    """Large float tensors go to int8 with one scale per row and come back within half a step of
    their row's scale, in their own dtype; small, 1-D and integer tensors are untouched, and a
    weight-normed direction v / ||v|| (taken per row) barely moves."""
    from safetensors.torch import save_file

    from neurocodec.codecs.weights_file import INT8_ROWS_KEY, INT8_SCALE_SUFFIX, int8_rows, load_safetensors

    torch.manual_seed(0)
    v = torch.randn(64, 32, 7) * torch.logspace(-3, 1, 64)[:, None, None]  # rows of very different size
    state = {"conv.weight_v": v.half(), "lstm.weight": torch.randn(128, 64), "bias": torch.randn(4096),
             "small": torch.randn(8, 8), "zero": torch.zeros(64, 64), "cdf": torch.arange(5000).view(50, 100)}
    packed, kinds = int8_rows(state)
    assert json.loads(kinds) == {"conv.weight_v": "float16", "lstm.weight": "float32", "zero": "float32"}
    assert packed["conv.weight_v"].dtype == torch.int8 and packed["conv.weight_v" + INT8_SCALE_SUFFIX].shape == (64,)
    for name in ("bias", "small", "cdf"):
        assert packed[name] is state[name]
    save_file(packed, str(tmp_path / "w.safetensors"), metadata={INT8_ROWS_KEY: kinds})
    back, meta = load_safetensors(tmp_path / "w.safetensors")
    assert set(back) == set(state)
    for name, t in state.items():
        assert back[name].dtype == t.dtype and back[name].shape == t.shape
    rows = v.half().float().reshape(64, -1)
    err = (back["conv.weight_v"].float().reshape(64, -1) - rows).abs().amax(1)
    assert torch.all(err <= rows.abs().amax(1) / 254 + 1e-3 * rows.abs().amax(1))  # half a step (+ fp16 rounding)
    assert torch.equal(back["zero"], state["zero"]) and torch.equal(back["cdf"], state["cdf"])
    d0, d1 = rows / rows.norm(dim=1, keepdim=True), back["conv.weight_v"].float().reshape(64, -1)
    d1 = d1 / d1.norm(dim=1, keepdim=True)
    assert (d0 - d1).abs().max().item() < 0.01


def test_malformed_int8_rows_are_a_weights_error():
    from neurocodec.codecs.weights_file import INT8_ROWS_KEY, int8_rows, restore_int8_rows

    packed, kinds = int8_rows({"w": torch.randn(64, 64)})
    with pytest.raises(WeightsError, match="malformed int8 rows"):
        restore_int8_rows({"w": packed["w"]}, {INT8_ROWS_KEY: kinds})  # the scales are missing
    with pytest.raises(WeightsError, match="malformed int8 rows"):
        restore_int8_rows(dict(packed), {INT8_ROWS_KEY: json.dumps({"w": "int64"})})
    plain = {"w": torch.ones(2)}
    assert restore_int8_rows(plain, {}) is plain  # no int8 rows: unchanged
