"""Sharded, resumable batch streams; collation; phase schedules; LR factors; divergence monitor."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from _tiny import TinyCodec, TinyConfig, TinyDataset
from neurocodec.train.data import BatchStream, ShardedBatchSampler, collate_audio, iterate_once
from neurocodec.train.errors import RecipeError
from neurocodec.train.optim import DivergenceMonitor, LrFactor, select_parameters, under
from neurocodec.train.protocol import LossOutput, Phase, coerce_loss, phase_at, schedule_phases, split_steps


def test_shards_are_disjoint_and_cover_an_epoch():
    n = 23
    shards = [ShardedBatchSampler(n, 3, seed=5, rank=r, world_size=2) for r in range(2)]
    assert shards[0].batches_per_epoch == 4  # ceil(23 / 2) = 12 per rank -> 4 batches of 3
    flat = [sum(s.epoch_batches(0), []) for s in shards]
    assert len(set(flat[0]) | set(flat[1])) == 23 and len(flat[0] + flat[1]) == 24  # one wrapped index
    assert shards[0].epoch_batches(0) == ShardedBatchSampler(n, 3, 5, 0, 2).epoch_batches(0)
    assert shards[0].epoch_batches(0) != shards[0].epoch_batches(1)


def test_stream_resumes_at_the_next_batch():
    ds = list(np.arange(40, dtype=np.float32).reshape(10, 1, 4))
    make = lambda: BatchStream(ds, ShardedBatchSampler(len(ds), 3, seed=1))  # 3 batches per epoch
    a = make()
    first = [next(a) for _ in range(4)]  # crosses into epoch 1
    assert a.state_dict() == {"epoch": 1, "position": 1}
    later = [next(a) for _ in range(4)]
    b = make()
    b.load_state_dict({"epoch": 1, "position": 1})
    for x, y in zip(later, [next(b) for _ in range(4)]):
        assert torch.equal(x, y)
    assert first[0].shape == (3, 1, 4)


def test_stream_with_too_little_data_is_a_user_error():
    with pytest.raises(RecipeError, match="fewer than one batch"):
        BatchStream([np.zeros(4)] * 3, ShardedBatchSampler(3, 4, 0))


def test_collate_accepts_arrays_tensors_and_records():
    out = collate_audio([np.zeros(5), torch.ones(1, 5), {"audio": np.full((1, 5), 2.0)}])
    assert out.shape == (3, 1, 5) and out.dtype == torch.float32 and out[2, 0, 0] == 2
    with pytest.raises(ValueError, match="mono"):
        collate_audio([np.zeros((2, 5))])
    with pytest.raises(ValueError, match="different lengths"):
        collate_audio([np.zeros(5), np.zeros(6)])
    batches = list(iterate_once(TinyDataset(5, 16), 2, 10))
    assert [b.shape[0] for b in batches] == [2, 2, 1]


def test_split_steps_and_phase_schedule():
    assert split_steps(10, [1, 1, 1]) == [4, 3, 3] and sum(split_steps(7, [0.3, 0.7])) == 7
    model = TinyCodec(TinyConfig(two_phases=True))
    sched = schedule_phases(model, 9)
    assert [(p.phase.name, p.start, p.end) for p in sched] == [("encoder", 0, 5), ("joint", 5, 9)]
    assert phase_at(sched, 4).phase.name == "encoder" and phase_at(sched, 5).phase.name == "joint"
    assert phase_at(sched, 99).index == 1

    class Fixed(torch.nn.Module):
        def phases(self):
            return [{"name": "a", "steps": 3}, {"name": "b", "steps": 3, "trainable": "x"}]

    with pytest.raises(RecipeError, match="add up to 6 steps, but the recipe asks for 5"):
        schedule_phases(Fixed(), 5)
    assert schedule_phases(Fixed(), 6)[1].phase.trainable == ("x",)


def test_phase_selects_parameters_by_module_path():
    model = TinyCodec(TinyConfig())
    chosen = [n for n, _ in select_parameters(model, Phase("e", 1, trainable=("enc",)))]
    assert chosen and all(n.startswith("enc.") for n in chosen)
    assert not model.dec[0].weight.requires_grad
    assert under("enc.0.weight", "enc") and not under("encoder.w", "enc")
    with pytest.raises(ValueError, match="trains no parameters"):
        select_parameters(model, Phase("none", 1, trainable=("missing",)))


def test_lr_factor_shapes():
    cos = LrFactor("cosine", steps=10, warmup=2, floor=0.5)
    assert cos(0) == 0.5 and cos(1) == 1.0 and cos(2) == 1.0
    assert math.isclose(cos(10), 0.5) and 0.5 < cos(6) < 1.0
    assert LrFactor("linear", 4, 0, 0.0)(2) == 0.5 and LrFactor("constant", 4, 0, 0.0)(3) == 1.0


def test_divergence_monitor():
    m = DivergenceMonitor(factor=100, window=20)
    for _ in range(12):
        assert m.check(1.0, True).ok
    assert m.check(50.0, True).ok
    v = m.check(1000.0, True)
    assert not v.ok and "exploded" in v.reason
    assert not m.check(float("nan"), True).ok and not m.check(1.0, False).ok
    m2 = DivergenceMonitor(100, 20)
    m2.load_state_dict(m.state_dict())
    assert list(m2.history) == list(m.history)


def test_coerce_loss_accepts_common_shapes():
    t = torch.tensor(2.0)
    assert coerce_loss(t).total is t
    assert coerce_loss({"loss": t, "loss/mse": 1.0}).terms == {"loss/mse": 1.0}
    assert coerce_loss(LossOutput(t)).total is t

    class Other:
        loss, logs = t, {"x": 1}

    assert coerce_loss(Other()).terms == {"x": 1}
    with pytest.raises(TypeError):
        coerce_loss({"mse": t})
