"""Tests of the CQ codec (zhen2020): trainable LPC analyzer + CMRL residual coding."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from neurocodec.codecs.cascade import ModuleOutput
from neurocodec.codecs.cq import CQ_BITRATES, CqCodec, CqConfig, cq_config
from neurocodec.dsp import lpc
from neurocodec.errors import BitrateError, WeightsError
from neurocodec.nn.cmrl_blocks import AutoencoderConfig

TINY = AutoencoderConfig(channels=8, bottleneck_channels=4)



@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    x, sr = sf.read(Path(__file__).resolve().parents[2] / "examples" / "speech.flac", dtype="float32",
                    always_2d=True)
    return np.ascontiguousarray(x.T[:1, :20000])


def tiny_cq(kbps: float = 16.0, **kw) -> CqCodec:
    torch.manual_seed(0)
    cfg = cq_config(kbps)
    return CqCodec(replace(cfg, modules=tuple(replace(m, channels=8, bottleneck_channels=4) for m in cfg.modules), **kw))


def test_operating_points_of_zhen2020():
    shapes = {kbps: [m.code_length for m in cq_config(kbps).modules] for kbps in CQ_BITRATES}
    assert shapes == {9.0: [128], 16.0: [256], 20.0: [256], 24.0: [256, 256]}
    cfg = cq_config(20)
    assert cfg.differential and cfg.lpc.trainable and cfg.lpc.num_centroids == 256 and cfg.lpc.order == 16
    assert cfg.lpc.preemphasis == 0.68 and cfg.lpc.analysis_length == 1024 and cfg.training.alpha == 300.0
    with pytest.raises(BitrateError):
        cq_config(8.85)
    with pytest.raises(ValueError, match="LPC"):
        CqConfig(lpc=None)


def test_full_size_parameter_counts():
    # zhen2020 §4.3: 0.45M per AE, 0.67M for the CQ-9 AE; + 32 code and 256 LSP centroids
    assert CqCodec.for_bitrate(9).num_parameters() == 682_607 + 32 + 256
    assert CqCodec.for_bitrate(24).num_parameters() == 2 * 465_372 + 2 * 32 + 256


def test_lsp_centroids_get_gradients_through_lpc_and_synthesis():
    codec = tiny_cq(24.0).train()
    codec.set_phase("greedy-1")
    out = codec.loss(torch.randn(2, 1, 4000) * 0.1)
    out.total.backward()
    g = codec.lsp_quantizer.centroids.grad
    assert g is not None and torch.isfinite(g).all() and g.abs().sum() > 0
    assert "lsp" in out.result.extras["indices"] and out.result.extras["indices"]["lsp"].shape[-1] == 16
    # greedy-2 trains module 2 only: LSP centroids and module 1 are frozen
    codec.zero_grad()
    codec.set_phase("greedy-2")
    codec.loss(torch.randn(2, 1, 4000) * 0.1).total.backward()
    assert codec.lsp_quantizer.centroids.grad is None
    assert all(p.grad is None for p in codec.coding_modules[0].parameters())
    assert [p.name for p in codec.training_phases()] == ["pretrain-1", "greedy-1", "pretrain-2", "greedy-2", "finetune"]
    assert codec.training_phases()[1].trainable == ("coding_modules.0.", "lsp_quantizer.")
    # unquantized pre-training trains the autoencoder only (the LSP centroids wait for greedy-1)
    assert codec.training_phases()[0].trainable == ("coding_modules.0.autoencoder.",)


def test_differential_code():
    codec = tiny_cq()
    m = codec.coding_modules[0]
    frames = torch.randn(3, 512)
    h = m.autoencoder.encode(frames)
    dh = m.code(frames)
    torch.testing.assert_close(dh[:, 0], h[:, 0])
    torch.testing.assert_close(dh[:, 1:], h[:, 1:] - h[:, :-1])


def test_forward_with_identity_module_reconstructs_highpassed_input():
    codec = tiny_cq()
    q = codec.coding_modules[0].quantizer

    class Identity(torch.nn.Module):
        def forward(self, r, alpha, hard=None, amp_dtype=None, quantize=True):
            return ModuleOutput(recon=r, code=r, quant=q(torch.zeros(r.shape[0], 2), alpha))

    codec.coding_modules[0] = Identity()
    x = torch.randn(2, 1, 3000, dtype=torch.float32) * 0.1
    res = codec(x)
    ref = lpc.highpass(x[:, 0].double().numpy())
    np.testing.assert_allclose(res.audio[:, 0].detach().numpy(), ref, atol=1e-5)
    torch.testing.assert_close(res.extras["target"][:, 0].double(), torch.from_numpy(ref), atol=1e-5, rtol=0)


def test_numpy_pipeline_perfect_reconstruction(speech):
    codec = tiny_cq()
    geo = codec.geometry(speech.shape[1])
    prep = codec._prepare_channel(speech[0], geo)
    assert prep.lsp_indices.shape == (geo.num_segments, 16)
    y = codec._synthesize_channel(prep.frames, prep.lsp_indices, prep.gain, geo)
    np.testing.assert_allclose(y, lpc.highpass(speech[0]), atol=1e-6)
    # the residual is whiter and smaller than the pre-emphasised speech
    assert np.sum(prep.frames ** 2) < np.sum((speech / prep.gain) ** 2)


def test_any_lsp_symbols_give_a_stable_synthesis_filter():
    codec = tiny_cq()
    idx = np.random.default_rng(0).integers(0, 256, size=(200, 16))
    idx[:20] = 7  # all LSPs on one centroid: the minimum gap must separate them
    a = codec._lpc_from_indices(idx)
    assert lpc.is_minimum_phase(a).all()


def test_compress_decompress_and_determinism(speech):
    codec = tiny_cq(9.0).eval()
    enc = codec.compress(speech, 9)
    assert enc.chunks == codec.compress(speech, 9).chunks
    y = codec.decompress(enc.chunks, 1, speech.shape[1], enc.bitrate_kbps)
    assert y.shape == speech.shape and y.dtype == np.float32 and np.all(np.isfinite(y))
    np.testing.assert_array_equal(y, codec.decompress(enc.chunks, 1, speech.shape[1], enc.bitrate_kbps))
    sym = codec.analyze_symbols(speech)
    geo = codec.geometry(speech.shape[1])
    assert sym["lsp"].shape == (geo.num_segments, 16) and sym["module1"].shape == (geo.num_frames, 128)


def test_eval_forward_matches_the_decoded_bitstream(speech):
    codec = tiny_cq(24.0).eval()
    x = speech[:, :7000]
    with torch.no_grad():
        res = codec(torch.from_numpy(x[None]))
    sym = codec.analyze_symbols(x)
    for name, idx in res.extras["indices"].items():
        np.testing.assert_array_equal(idx.reshape(sym[name].shape).numpy(), sym[name])
    enc = codec.compress(x)
    y = codec.decompress(enc.chunks, 1, x.shape[1], enc.bitrate_kbps)
    np.testing.assert_allclose(res.audio[0].numpy(), y, atol=1e-4 * max(1.0, np.abs(y).max()))


def test_fitted_tables_and_checkpoint(tmp_path, speech):
    codec = tiny_cq(20.0).eval()
    before = codec.compress(speech)
    codec.fit_entropy_tables(codec.count_symbols(codec.analyze_symbols(speech)))
    after = codec.compress(speech)
    assert after.num_bytes < before.num_bytes
    path = tmp_path / "cq20.safetensors"
    codec.save_pretrained(path)
    loaded = CqCodec.from_pretrained(path)
    assert loaded.config == codec.config
    assert loaded.compress(speech).chunks == after.chunks
    np.testing.assert_array_equal(loaded.decompress(after.chunks, 1, speech.shape[1], 20),
                                  codec.decompress(after.chunks, 1, speech.shape[1], 20))
    with pytest.raises(WeightsError):
        from neurocodec.codecs.cmrl import CmrlCodec

        CmrlCodec.from_pretrained(path)


def test_lsp_quantizer_alpha_scale_is_relative_to_centroid_spacing():
    codec = tiny_cq()
    q = codec.lsp_quantizer
    levels = q.centroids.detach().numpy()
    assert levels[0] == pytest.approx(2 * math.pi * 50 / 16000, rel=1e-4)
    assert q.scale == pytest.approx((levels[-1] - levels[0]) / 255, rel=1e-5)


def test_alpha_annealing_restarts_in_every_phase():
    import torch

    from neurocodec.codecs.cq import CqCodec
    from neurocodec.train.protocol import schedule_phases

    model = CqCodec.for_bitrate(16)
    cfg = model.config.training
    assert cfg.alpha_anneal_steps > 0
    sched = schedule_phases(model, 2 * cfg.alpha_anneal_steps)
    assert len(sched) >= 2
    x = torch.randn(2, 1, 1024) * 0.1

    def enter(sp):  # what the trainer does at a phase's first step
        model.set_phase(sp.source)
        model.phase_start_step = sp.start

    enter(sched[0])
    model.training_step(x, 0)
    assert model.alpha == pytest.approx(cfg.alpha_start)
    model.training_step(x, cfg.alpha_anneal_steps)
    assert model.alpha == pytest.approx(cfg.alpha)
    enter(sched[1])
    model.training_step(x, sched[1].start)
    assert model.alpha == pytest.approx(cfg.alpha_start)
    # fine-tuning alone (train.phases=finetune): the schedule starts there at step 0
    only = schedule_phases(model, 100, ["finetune"])
    assert [(p.phase.name, p.start, p.end) for p in only] == [("finetune", 0, 100)]
    with pytest.raises(Exception, match="unknown phase"):
        schedule_phases(model, 100, ["nope"])


def test_autocast_reaches_only_the_autoencoders():
    import torch

    from neurocodec.codecs.cq import CqCodec

    model = CqCodec.for_bitrate(16).train()
    x = torch.randn(2, 1, 2048) * 0.1
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model.loss(x)
    res = out.result
    assert res.audio.dtype == torch.float32 and out.total.dtype == torch.float32
    assert all(q.output.dtype == torch.float32 for q in res.extras["quantizers"].values())
    assert res.extras["module_outputs"][0].recon.dtype == torch.float32
    out.total.backward()
    assert model.coding_modules[0].autoencoder.encoder.input.weight.grad is not None
