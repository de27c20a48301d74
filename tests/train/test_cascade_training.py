"""The cascade codecs' training procedure (issue 12): unquantized pre-training, k-means
centroids when quantization switches on, the entropy weight steered between evaluations,
training settings outside the stream hash, and ``train.lr`` honoured by every phase."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import soundfile as sf
import torch

from neurocodec.codecs.cascade import CascadeTraining, LossWeights, RateSteer, config_from_json, config_to_json
from neurocodec.codecs.cmrl import CmrlCodec, CmrlConfig, cmrl_config
from neurocodec.data.manifest import Manifest, SegmentRecord
from neurocodec.nn.cmrl_blocks import AutoencoderConfig
from neurocodec.quant.soft_to_hard import kmeans_1d, uniform_for_entropy
from neurocodec.train.cli import default_build_data
from neurocodec.train.protocol import schedule_phases
from neurocodec.train.recipe import make_recipe, register_recipe, unregister_recipe
from neurocodec.train.trainer import Trainer

TINY = AutoencoderConfig(channels=8, bottleneck_channels=4)


def tiny(**training) -> CmrlCodec:
    torch.manual_seed(0)
    cfg = cmrl_config(15.85)
    return CmrlCodec(replace(cfg, modules=(TINY, TINY), training=replace(cfg.training, **training)))


def enter(model, sp) -> None:  # what the trainer does when a phase starts
    model.set_phase(sp.source)
    model.phase_start_step = sp.start


def test_kmeans_1d_finds_the_clusters():
    rng = np.random.default_rng(0)
    centres = np.array([-0.8, -0.1, 0.3, 0.9])
    x = torch.tensor(np.concatenate([c + 0.01 * rng.standard_normal(500) for c in centres]))
    c = kmeans_1d(x[torch.randperm(x.numel(), generator=torch.Generator().manual_seed(0))], 4)
    np.testing.assert_allclose(c.numpy(), centres, atol=0.005)
    assert torch.equal(c, kmeans_1d(x, 4))  # deterministic, independent of the order
    with pytest.raises(ValueError, match="at least 4"):
        kmeans_1d(torch.zeros(3), 4)


def test_uniform_grid_at_a_target_entropy():
    x = torch.randn(20000, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 0.3 + 0.1
    for bits in (1.0, 2.0, 3.5):
        c = uniform_for_entropy(x, 32, bits)
        assert c.numel() == 32 and torch.allclose(torch.diff(c), torch.diff(c)[:1].expand(31))
        idx = torch.argmin((x[:, None] - c) ** 2, dim=1)
        p = torch.bincount(idx, minlength=32).double() / x.numel()
        h = float(-(p[p > 0] * torch.log2(p[p > 0])).sum())
        assert h == pytest.approx(bits, abs=0.02)
    # in the codec: greedy-1 starts at its target (first_module_share of 15.85 kbps)
    model = tiny(centroid_init="entropy", first_module_share=0.75).train()
    sched = schedule_phases(model, 60)
    enter(model, sched[1])
    xb = torch.randn(8, 1, 4096) * 0.1
    model.training_step(xb, 10)
    model.eval()
    bits = 0.75 * 15.85 * 1000 / model.symbols_per_second("module1")
    idx = model(xb).extras["indices"]["module1"].reshape(-1)
    p = torch.bincount(idx, minlength=32).double() / idx.numel()
    assert float(-(p[p > 0] * torch.log2(p[p > 0])).sum()) == pytest.approx(bits, abs=0.05)


def test_pretraining_is_unquantized_and_evaluation_stays_hard():
    model = tiny().train()
    sched = schedule_phases(model, 60)
    assert [(p.phase.name, p.start) for p in sched] == [("pretrain-1", 0), ("greedy-1", 10), ("pretrain-2", 20),
                                                        ("greedy-2", 30), ("finetune", 40)]
    enter(model, sched[0])
    x = torch.randn(2, 1, 2048) * 0.1
    res = model(x)
    m = model.coding_modules[0]
    frames = res.extras["frames"]
    assert res.extras["module_outputs"][0].quant is None and "module1" not in res.extras["quantizers"]
    torch.testing.assert_close(res.extras["module_outputs"][0].recon, m.autoencoder(frames)[:, 0, :])
    out = model.training_step(x, 0)
    assert float(out.terms["loss/rate"]) == 0 and float(out.terms["loss/quantization"]) == 0
    out.total.backward()
    assert m.quantizer.centroids.grad is None  # centroids do not train unquantized
    assert m.autoencoder.encoder.output.weight.grad is not None
    # eval mode (validation PESQ, reconstruct): the hard path, quantized even in pre-training
    model.eval()
    q = model(x).extras["quantizers"]["module1"]
    torch.testing.assert_close(q.output, q.hard)


def test_kmeans_initialises_the_centroids_when_quantization_switches_on():
    model = tiny().train()
    sched = schedule_phases(model, 60)
    x = torch.randn(4, 1, 2048) * 0.1
    enter(model, sched[0])
    before = model.coding_modules[0].quantizer.centroids.detach().clone()
    model.training_step(x, 5)
    assert torch.equal(model.coding_modules[0].quantizer.centroids, before)  # untouched in pre-training
    enter(model, sched[1])  # greedy-1 starts at step 10: k-means on this batch's codes
    model.training_step(x, 10)
    m = model.coding_modules[0]
    frames = model(x).extras["frames"]
    expected = kmeans_1d(m.code(frames), 32)
    torch.testing.assert_close(m.quantizer.centroids.detach(), expected.float())
    assert not torch.equal(expected.float(), before)
    # later steps of the phase (and a run resumed in the middle of it) keep the centroids
    with torch.no_grad():
        m.quantizer.centroids.add_(0.01)
    kept = m.quantizer.centroids.detach().clone()
    model.training_step(x, 11)
    torch.testing.assert_close(m.quantizer.centroids.detach(), kept)
    # module 2's k-means sees module 1's hard-quantized residual, module 1 is left alone
    enter(model, sched[3])
    model.training_step(x, 30)
    res = model.eval()(x)
    r = res.extras["frames"] - res.extras["module_outputs"][0].recon
    m2 = model.coding_modules[1]
    torch.testing.assert_close(m2.quantizer.centroids.detach(), kmeans_1d(m2.code(r), 32).float())
    torch.testing.assert_close(m.quantizer.centroids.detach(), kept)
    # without pre-training nothing is re-initialised
    plain = tiny(pretrain_share=0.0).train()
    enter(plain, schedule_phases(plain, 30)[0])
    c0 = plain.coding_modules[0].quantizer.centroids.detach().clone()
    plain.training_step(x, 0)
    assert torch.equal(plain.coding_modules[0].quantizer.centroids, c0)


def test_entropy_weight_is_steered_between_evaluations_not_per_step():
    steer = RateSteer(0.05)
    for _ in range(9):
        assert steer.observe(20.0, 10.0, every=10, factor=2.0, tolerance=0.05) is None
    assert float(steer.weight) == pytest.approx(0.05)  # nothing changes inside an interval
    assert steer.observe(20.0, 10.0, every=10, factor=2.0, tolerance=0.05) == pytest.approx(20.0)
    assert float(steer.weight) == pytest.approx(0.1)
    for _ in range(10):
        steer.observe(5.0, 10.0, every=10, factor=2.0, tolerance=0.05)
    assert float(steer.weight) == pytest.approx(0.05)
    for _ in range(10):
        steer.observe(10.2, 10.0, every=10, factor=2.0, tolerance=0.05)  # within the tolerance
    assert float(steer.weight) == pytest.approx(0.05)
    # in the codec: the rate term is weight * E of the trained quantizers; the state is a buffer
    model = tiny(steer_every=2, steer_factor=2.0).train()
    sched = schedule_phases(model, 60)
    enter(model, sched[1])
    x = torch.randn(2, 1, 2048) * 0.1
    out = model.training_step(x, 10)
    assert float(out.terms["loss/rate"]) == pytest.approx(0.05 * float(out.terms["loss/entropy"]), rel=1e-5)
    model.training_step(x, 11)  # an untrained model is far above the target: the weight doubles
    assert float(model.rate_steer.weight) == pytest.approx(0.1)
    assert "rate_steer.weight" in model.state_dict()


def test_first_module_share_sets_the_greedy_1_target():
    model = tiny()
    model.set_phase("greedy-1")
    assert model.target_kbps_for_phase() == pytest.approx(15.85 / 2)  # by symbol rate
    model = tiny(first_module_share=0.75)
    model.set_phase("greedy-1")
    assert model.target_kbps_for_phase() == pytest.approx(0.75 * 15.85)
    model.set_phase("finetune")
    assert model.target_kbps_for_phase() == pytest.approx(15.85)


def test_training_settings_are_not_in_the_stream_hash(tmp_path):
    model = tiny()
    h = model.config_hash()
    assert "training" not in model.config_dict()
    other = CmrlCodec(replace(model.config, training=CascadeTraining(
        greedy_lr_factors=(3.0, 1.0), loss=LossWeights(mel=0.3), alpha_start=30.0, rate_control="hinge")))
    other.load_state_dict(model.state_dict())
    assert other.config_hash() == h
    other.rate_steer.weight.fill_(7.0)  # training state: not part of the weights either
    assert other.config_hash() == h
    for stream_change in ({"code_scale": 0.9}, {"entropy_coder": "range"}, {"chunk_frames": 16}):
        changed = CmrlCodec(replace(model.config, **stream_change))
        changed.load_state_dict(model.state_dict())
        assert changed.config_hash() != h, stream_change
    # exported weights hold no training state and load back with the training settings
    model.save_pretrained(tmp_path / "m.safetensors")
    back = CmrlCodec.from_pretrained(tmp_path / "m.safetensors")
    assert back.config == model.config and back.config_hash() == h
    # configs written before the split (training fields at the top level, absolute learning rates)
    legacy = json.loads(config_to_json(model.config))
    legacy.pop("training")
    legacy.update(alpha=300.0, alpha_start=30.0, alpha_anneal_steps=200, train_output="soft", rate_control=True,
                  rate_penalty=0.1, rate_margin=1.15, rate_lower_penalty=0.3, greedy_learning_rates=[1e-4, 1e-4],
                  finetune_learning_rate=1e-4, loss={"time": 1.0, "mel": 1.0, "quantization": 0.1, "entropy": 0.05,
                                                     "mel_bands": [128, 32, 16, 8], "mel_n_fft": 512, "mel_hop": 128})
    old = config_from_json(CmrlConfig, json.dumps(legacy))
    assert old.training.rate_margin == 1.15 and old.training.alpha_start == 30.0
    assert old.training.rate_control == "hinge" and old.training.greedy_lr_factors == (1.0, 1.0)
    assert old.training.finetune_lr_factor == 1.0 and old.training.pretrain_share == 0.0
    assert CmrlCodec(old).config_dict() == model.config_dict()


@pytest.fixture
def tiny_cascade_recipe():
    def build(cfg: CmrlConfig) -> CmrlCodec:
        return CmrlCodec(replace(cfg, modules=(TINY, TINY)))

    register_recipe("tiny-cascade", CmrlConfig, build, replace=True,
                    train={"batch_size": 2, "segment_samples": 2048, "log_every": 1, "val_every": 100,
                           "ckpt_every": 100, "threads": 1})
    yield "tiny-cascade"
    unregister_recipe("tiny-cascade")


@pytest.fixture
def speech_manifest(tmp_path):
    rng = np.random.default_rng(0)
    recs = []
    for i in range(2):
        x = 0.1 * rng.standard_normal(16000)
        sf.write(tmp_path / f"f{i}.flac", x.astype(np.float32), 16000)
        recs.append(SegmentRecord(f"f{i}.flac", 1.0, 16000, "speech-real", speaker=f"s{i}", split="train"))
    Manifest(recs, tmp_path).save(tmp_path / "manifest.jsonl")
    return tmp_path / "manifest.jsonl"


def test_train_lr_is_honoured_by_every_phase(tmp_path, tiny_cascade_recipe, speech_manifest):
    recipe = make_recipe(tiny_cascade_recipe, ["train.steps=10", "train.lr=3e-4"])
    data = default_build_data(speech_manifest, "train", recipe, 16000)
    Trainer(recipe, tmp_path / "run", data, None, progress=False, tensorboard=False).fit()
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    lrs = {int(r["step"]): r["train/lr"] for r in rows if "train/lr" in r}
    phase = {int(r["step"]): int(r["train/phase"]) for r in rows if "train/phase" in r}
    # pretrain-1, greedy-1 at train.lr; pretrain-2 at train.lr; greedy-2 and finetune at 0.2 train.lr
    factors = {0: 1.0, 1: 1.0, 2: 1.0, 3: 0.2, 4: 0.2}
    assert sorted(set(phase.values())) == [0, 1, 2, 3, 4]
    for step, lr in lrs.items():
        assert lr == pytest.approx(3e-4 * factors[phase[step]]), step
    # a factor of the model config changes only its phase
    recipe = make_recipe(tiny_cascade_recipe, ["train.steps=10", "model.training.finetune_lr_factor=0.5"])
    Trainer(recipe, tmp_path / "run2", data, None, progress=False, tensorboard=False).fit()
    rows = [json.loads(line) for line in (tmp_path / "run2" / "metrics.jsonl").read_text().splitlines()]
    last = [r for r in rows if "train/lr" in r][-1]
    assert last["train/phase"] == 4 and last["train/lr"] == pytest.approx(0.5e-4)
