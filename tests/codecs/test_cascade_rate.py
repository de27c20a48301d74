"""File-level rate control of the cascade codecs: the step planner, the step field of a chunk,
and a tiny CMRL that fits its files into the budget the container leaves."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from neurocodec.codecs.cascade_rate import plan_rate_steps
from neurocodec.codecs.cascade_tables import (RATE_STEPS, ChunkContent, EntropyTable, decode_chunk, encode_chunk,
                                              rate_step_multiplier)
from neurocodec.codecs.cmrl import CmrlCodec, cmrl_config
from neurocodec.nn.cmrl_blocks import AutoencoderConfig


def _sizes(bases, per_step=0.03):
    """Chunk sizes that fall by ``per_step`` (relative) per ladder step, with a call log."""
    calls = []

    def size(chunk, step):
        calls.append((chunk, step))
        return int(round(bases[chunk] * (1 - per_step) ** step))

    return size, calls


@pytest.mark.parametrize("budget", [900, 1000, 1234, 1500, 2000, 2900])
def test_planner_lands_within_half_a_step_of_one_chunk(budget):
    bases = [400, 700, 150, 520]
    size, _ = _sizes(bases)
    plan = plan_rate_steps(size, 4, budget)
    used = sum(size(c, k) for c, k in enumerate(plan))
    assert max(plan) - min(plan) <= 1
    k = max(plan)
    extras = [size(c, k - 1) - size(c, k) for c in range(4) if plan[c] == k]
    if extras:  # a chunk left at the coarser step: one step of it is the resolution
        assert abs(used - budget) <= min(extras) / 2
    else:
        assert used <= budget


def test_planner_limits_and_edge_cases():
    size, _ = _sizes([500, 500])
    assert plan_rate_steps(size, 2, 10) == [RATE_STEPS.stop - 1] * 2  # nothing fits: the coarsest
    assert plan_rate_steps(size, 2, 10 ** 6) == [RATE_STEPS.start] * 2  # everything fits: the finest
    assert plan_rate_steps(size, 0, 100) == []
    assert plan_rate_steps(size, 2, 1000) == [0, 0]  # the trained step exactly fits

    def rising(chunk, step):  # a size that grows again past step 5 (an untrained later module)
        return 500 + 10 * abs(step - 5)

    plan = plan_rate_steps(rising, 2, 10)  # nothing fits: the smallest stream tried, not the coarsest
    assert sum(rising(c, k) for c, k in enumerate(plan)) < 2 * rising(0, RATE_STEPS.stop - 1)


def test_planner_needs_few_trials():
    size, calls = _sizes([800] * 10, per_step=0.02)
    plan = plan_rate_steps(size, 10, 6000)
    assert len({k for _, k in calls}) <= 6  # uniform steps tried (secant search), 10 chunks each
    assert sum(size(c, k) for c, k in enumerate(plan)) <= 6000


@pytest.mark.parametrize("step", [-32, -1, 0, 1, 17, 31])
def test_chunk_carries_its_rate_step(step):
    tables = {"module1": EntropyTable(4)}
    sym = [{"module1": np.array([[0, 1, 2, 3], [3, 3, 0, 0]])}]
    gains = np.array([0.5], dtype=np.float32)
    for coder in ("huffman", "range"):
        data = encode_chunk(ChunkContent(coder, gains, sym, step), tables, ["module1"])
        assert data[0] & 3 == (0 if coder == "huffman" else 1)
        back = decode_chunk(data, 1, tables, ["module1"], {"module1": (2, 4)})
        assert back.rate_step == step and back.coder == coder
        np.testing.assert_array_equal(back.symbols[0]["module1"], sym[0]["module1"])
    # a chunk without rate control starts with the coder id alone, as before the field existed
    assert encode_chunk(ChunkContent("range", gains, sym), tables, ["module1"])[0] == 1
    with pytest.raises(ValueError, match="rate step"):
        encode_chunk(ChunkContent("huffman", gains, sym, 32), tables, ["module1"])


def test_ladder_multipliers():
    assert rate_step_multiplier(0) == 1.0
    assert rate_step_multiplier(16) == pytest.approx(2 ** 0.5)
    assert rate_step_multiplier(17) == pytest.approx(2 ** (19 / 32))
    assert rate_step_multiplier(31) == pytest.approx(2 ** (61 / 32))
    assert rate_step_multiplier(-32) == 0.25
    m = [rate_step_multiplier(k) for k in RATE_STEPS]
    assert all(a < b for a, b in zip(m, m[1:]))
    with pytest.raises(ValueError):
        rate_step_multiplier(40)


@pytest.fixture(scope="module")
def tiny():
    """A tiny one-module CMRL with tables fitted on its own symbols of a synthetic signal (an
    untrained second module would code a residual that grows with module 1's step)."""
    torch.manual_seed(0)
    tiny = AutoencoderConfig(channels=8, bottleneck_channels=4)
    cfg = replace(cmrl_config(15.85), modules=(tiny,), entropy_coder="best")
    model = CmrlCodec(cfg).eval()
    t = np.arange(48000) / 16000
    x = (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t))
         + 0.02 * np.random.default_rng(0).standard_normal(t.size)).astype(np.float32)[None]
    model.fit_entropy_tables(model.count_symbols(model.analyze_symbols(x)))
    return model, x


def test_rate_controlled_stream_fits_the_budget_and_decodes(tiny):
    model, x = tiny
    model.set_file_rate_control(False)
    plain = model.compress(x)
    assert all(c[0] >> 2 == 0 for c in plain.chunks)
    model.set_file_rate_control(True)
    try:
        encoded = {}
        for room in (1.03, 0.97):  # the budget is this much of the untrimmed payload
            budget = int(room * plain.num_bytes)
            enc = model.compress(x, payload_budget_bytes=budget)
            assert enc.num_bytes == pytest.approx(budget, rel=0.01)
            y = model.decompress(enc.chunks, 1, x.shape[1], 15.85)
            assert y.shape == x.shape and np.isfinite(y).all()
            encoded[room] = enc
        steps = {room: [c[0] >> 2 for c in enc.chunks] for room, enc in encoded.items()}
        assert all(k >= 32 for k in steps[1.03]) and all(0 < k < 32 for k in steps[0.97])  # finer, coarser
        # the decoder reads each chunk's step: decoding with the steps ignored gives other audio
        enc = encoded[0.97]
        assert any(c[0] >> 2 for c in enc.chunks)
        stripped = [bytes([c[0] & 3]) + c[1:] for c in enc.chunks]
        assert not np.array_equal(model.decompress(stripped, 1, x.shape[1], 15.85),
                                  model.decompress(enc.chunks, 1, x.shape[1], 15.85))
    finally:
        model.set_file_rate_control(False)


def test_rate_control_is_part_of_the_config_hash(tiny):
    model, _ = tiny
    off = model.config_hash()
    assert "file_rate_control" not in model.config_dict()  # configs from before it keep their hash
    model.set_file_rate_control(True)
    try:
        assert model.config_hash() != off and model.config_dict()["file_rate_control"] is True
    finally:
        model.set_file_rate_control(False)


@pytest.fixture(scope="module")
def two_modules():
    """A tiny two-module CMRL, tables fitted on its own symbols, rate module 2."""
    torch.manual_seed(1)
    tiny = AutoencoderConfig(channels=8, bottleneck_channels=4)
    cfg = replace(cmrl_config(15.85), modules=(tiny, tiny), entropy_coder="best",
                  training=replace(cmrl_config(15.85).training, greedy_lr_factors=(1.0, 1.0)))
    model = CmrlCodec(cfg).eval()
    t = np.arange(32000) / 16000
    x = (0.3 * np.sin(2 * np.pi * 180 * t) + 0.03 * np.random.default_rng(1).standard_normal(t.size))
    x = x.astype(np.float32)[None]
    model.fit_entropy_tables(model.count_symbols(model.analyze_symbols(x)))
    return model, x


def test_rate_module_is_the_one_the_ladder_turns(two_modules):
    from neurocodec.codecs.cascade_coding import ChunkCoder

    model, x = two_modules
    geo = model.geometry(x.shape[1])
    for number, fixed, turned in ((1, None, "module1"), (2, "module1", "module2")):
        model.set_rate_module(number)
        coder = ChunkCoder(model, [model._prepare_channel(x[0], geo)], geo)
        at0, at8 = coder.symbols(0, 0, 0), coder.symbols(0, 0, 8)
        assert not np.array_equal(at0[turned], at8[turned])
        if fixed is not None:  # the modules before the rate module do not depend on the step
            np.testing.assert_array_equal(at0[fixed], at8[fixed])
    # a stream's chunk steps scale module 2: decoding with the steps dropped gives other audio
    model.set_file_rate_control(True)
    try:
        plain = model.compress(x, payload_budget_bytes=10 ** 6)
        enc = model.compress(x, payload_budget_bytes=int(0.8 * plain.num_bytes))
        assert any(c[0] >> 2 for c in enc.chunks)
        y = model.decompress(enc.chunks, 1, x.shape[1], 15.85)
        stripped = [bytes([c[0] & 3]) + c[1:] for c in enc.chunks]
        assert np.isfinite(y).all() and not np.array_equal(y, model.decompress(stripped, 1, x.shape[1], 15.85))
        model.set_rate_module(1)  # the decoder scales the configured module: module 1 gives other audio
        assert not np.array_equal(y, model.decompress(enc.chunks, 1, x.shape[1], 15.85))
    finally:
        model.set_file_rate_control(False)
        model.set_rate_module(1)


def test_rate_module_in_the_config_and_its_errors(two_modules):
    from neurocodec.errors import UserError

    model, _ = two_modules
    one = model.config_hash()
    assert "rate_module" not in model.config_dict()  # configs from before it keep their hash
    model.set_code_scale(1.2)
    model.set_rate_module(2)  # another module: the step restarts at 1, on module 2 only
    try:
        assert model.config.code_scale == 1.0 and model.config_dict()["rate_module"] == 2
        assert [m.code_scale for m in model.coding_modules] == [1.0, 1.0]
        model.set_code_scale(0.9)
        assert [m.code_scale for m in model.coding_modules] == [1.0, 0.9]
        assert model.config_hash() != one
        rebuilt = CmrlCodec(model.config)
        assert [m.code_scale for m in rebuilt.coding_modules] == [1.0, 0.9]
        with pytest.raises(UserError, match="rate module 3 does not exist"):
            model.set_rate_module(3)
        with pytest.raises(ValueError, match="rate_module"):
            replace(model.config, rate_module=0)
    finally:
        model.set_rate_module(1)
        model.set_code_scale(1.0)
    assert model.config_hash() == one


def test_bits_per_module_and_the_automatic_choice(two_modules):
    from neurocodec.train.export import _rate_module

    model, x = two_modules
    bits = model.bits_per_module([x])
    assert sorted(bits) == [1, 2] and all(b >= 0 for b in bits.values())
    counts = model.count_symbols(model.analyze_symbols(x))
    assert bits[1] == pytest.approx(counts["module1"].entropy_bits() * model.symbols_per_second("module1"))

    class Stub:
        def bits_per_module(self, fit):
            return {1: 20.0, 2: 9000.0, 3: 40.0}

    said = []
    assert _rate_module(Stub(), [x], "auto", said.append) == 2 and "module 2" in said[0]
    assert _rate_module(Stub(), [x], "3", said.append) == 3


@pytest.fixture(scope="module")
def laddered(two_modules):
    """The two-module model with entropy tables of its own at ladder steps -4, 4 and 8 (rate
    module 2), fitted on its signal."""
    model, x = two_modules
    cfg = replace(model.config, rate_module=2, ladder_tables=(8, -4, 4), file_rate_control=True)
    lad = CmrlCodec(cfg).eval()
    lad.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("step_tables.")},
                        strict=False)
    lad.fit_entropy_coder([x])
    return lad, x


def test_ladder_tables_config():
    cfg = replace(cmrl_config(15.85), ladder_tables=[4, -4, 4])
    assert cfg.ladder_tables == (-4, 4)
    for bad in ((0,), (40,)):
        with pytest.raises(ValueError, match="ladder_tables"):
            replace(cmrl_config(15.85), ladder_tables=bad)
    model = CmrlCodec(cfg)
    assert "ladder_tables" in model.config_dict() and "ladder_tables" not in CmrlCodec(cmrl_config(15.85)).config_dict()
    assert sorted(model.step_tables) == ["step+4", "step-4"]
    assert sorted(model.step_tables["step+4"]) == ["module1", "module2"]  # rate module 1 and the module after it


def test_ladder_tables_are_fitted_at_their_step(laddered):
    from neurocodec.codecs.cascade_coding import ChunkCoder

    model, x = laddered
    assert sorted(model.step_tables) == ["step+4", "step+8", "step-4"]
    assert sorted(model.step_tables["step+4"]) == ["module2"]  # module 1 codes the same symbols at every step
    geo = model.geometry(x.shape[1])
    coder = ChunkCoder(model, [model._prepare_channel(x[0], geo)], geo)
    sym = np.concatenate([coder.symbols(0, k, 4)["module2"] for k in range(geo.num_chunks)])
    expected = model.count_symbols({"module2": sym})["module2"]
    np.testing.assert_array_equal(model.step_tables["step+4"]["module2"].pair_counts.numpy(), expected.pairs)
    assert model.tables_for_step(4)["module2"] is model.step_tables["step+4"]["module2"]
    assert model.tables_for_step(4)["module1"] is model.entropy_tables["module1"]
    assert model.tables_for_step(0) is model.entropy_tables and model.tables_for_step(2) is model.entropy_tables


def test_ladder_tables_stream_round_trip(laddered, tmp_path):
    model, x = laddered
    plain = model.compress(x, payload_budget_bytes=10 ** 6)
    enc = model.compress(x, payload_budget_bytes=int(0.85 * plain.num_bytes))
    steps = [((c[0] >> 2) + 32) % 64 - 32 for c in enc.chunks]
    assert set(steps) <= {-4, 0, 4, 8} and any(steps)
    y = model.decompress(enc.chunks, 1, x.shape[1], 15.85)
    assert np.isfinite(y).all()
    # the chunks are coded with their step's tables: the trained step's tables decode other symbols
    from neurocodec.errors import CorruptStreamError

    tables = model.step_tables
    model.step_tables = torch.nn.ModuleDict()
    try:
        try:
            other = model.decompress(enc.chunks, 1, x.shape[1], 15.85)
        except CorruptStreamError:
            other = None
        assert other is None or not np.array_equal(other, y)
    finally:
        model.step_tables = tables
    # the tables travel with the weights: a reloaded model writes and reads the same stream
    model.save_pretrained(tmp_path / "lad.safetensors")
    again = CmrlCodec.from_pretrained(tmp_path / "lad.safetensors")
    assert again.compress(x, payload_budget_bytes=int(0.85 * plain.num_bytes)).chunks == enc.chunks
    np.testing.assert_array_equal(again.decompress(enc.chunks, 1, x.shape[1], 15.85), y)
