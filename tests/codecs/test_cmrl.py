"""Tests of the CMRL and LPC-CMRL codecs (zhen2019) and the shared cascade machinery.

Most tests use a tiny autoencoder (8 channels) so they run in a fraction of a second; the
architecture, framing, LPC, quantization and bitstream code paths are the full ones.
"""

from __future__ import annotations

from dataclasses import fields, replace

import math

import numpy as np
import pytest
import soundfile as sf
import torch

from neurocodec.codecs.cascade import CascadeConfig, CascadeTraining, ModuleOutput, config_from_json, config_to_json
from neurocodec.codecs.cascade_tables import SymbolCounts
from neurocodec.codecs.cmrl import CMRL_BITRATES, CmrlCodec, CmrlConfig, LpcCmrlCodec, cmrl_config
from neurocodec.errors import AudioError, BitrateError, CorruptStreamError, UserError, WeightsError
from neurocodec.nn.cmrl_blocks import AutoencoderConfig

TINY = AutoencoderConfig(channels=8, bottleneck_channels=4)
TINY2 = AutoencoderConfig(channels=8, bottleneck_channels=4, num_downsamples=2)



@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    from pathlib import Path

    x, sr = sf.read(Path(__file__).resolve().parents[2] / "examples" / "speech.flac", dtype="float32",
                    always_2d=True)
    assert sr == 16000
    return np.ascontiguousarray(x.T[:1, :24000])


def tiny_cmrl(kbps: float = 15.85, lpc: bool = False, **kw) -> CmrlCodec:
    torch.manual_seed(0)
    cfg = cmrl_config(kbps, lpc=lpc)
    mods = (TINY, TINY2) if kbps == 8.85 else (TINY, TINY)
    tr = {k: kw.pop(k) for k in list(kw) if k in {f.name for f in fields(CascadeTraining)}}
    cfg = replace(cfg, modules=mods, training=replace(cfg.training, **tr), **kw)
    return (LpcCmrlCodec if lpc else CmrlCodec)(cfg)


# -- configuration -----------------------------------------------------------------------------
def test_operating_points_of_zhen2019():
    for kbps in CMRL_BITRATES:
        cfg = cmrl_config(kbps)
        assert cfg.bitrate_kbps == kbps and cfg.lpc is None and not cfg.differential
        assert [m.code_length for m in cfg.modules] == ([256, 128] if kbps == 8.85 else [256, 256])
        assert cfg.frame_length == 512 and cfg.overlap == 32 and cfg.num_centroids == 32
    lpc = cmrl_config(23.85, lpc=True)
    assert lpc.lpc is not None and not lpc.lpc.trainable and lpc.lpc.num_centroids == 32
    with pytest.raises(BitrateError, match="8.85"):
        cmrl_config(12.0)


def test_full_size_parameter_count():
    codec = CmrlCodec.for_bitrate(15.85)
    # two Table-1 autoencoders (465,372 each) + 2 x 32 centroids; "0.9 million" in zhen2019
    assert codec.num_parameters() == 2 * 465_372 + 2 * 32
    assert codec.bitrates.choices == (15.85,)


def test_config_json_round_trip_and_errors():
    cfg = cmrl_config(8.85, lpc=True)
    assert config_from_json(CmrlConfig, config_to_json(cfg)) == cfg
    with pytest.raises(WeightsError):
        config_from_json(CmrlConfig, '{"modules": [], "bogus": 1}')
    with pytest.raises(ValueError):
        CascadeConfig(modules=())
    with pytest.raises(ValueError):
        LpcCmrlCodec(cmrl_config(15.85))  # LPC-CMRL needs the LPC front end


# -- forward / loss / phases -----------------------------------------------------------------
def test_forward_shapes_bits_and_cascade_residual_identity():
    codec = tiny_cmrl(8.85)
    x = torch.randn(2, 1, 3000) * 0.1
    res = codec(x)
    assert res.audio.shape == (2, 1, 3000)
    frames = res.extras["frames"]
    nf = -(-(3000 + 32) // 480)
    assert frames.shape == (2 * nf, 512)
    assert res.extras["indices"]["module1"].shape == (2 * nf, 256)
    assert res.extras["indices"]["module2"].shape == (2 * nf, 128)
    # zhen2019 eq. 1: sum of the module outputs + final residual == the coded input
    total = sum(o.recon for o in res.extras["module_outputs"])
    torch.testing.assert_close(total + res.extras["residual"], frames, atol=1e-5, rtol=0)
    # module 2 codes module 1's residual
    torch.testing.assert_close(res.extras["module_outputs"][0].recon + res.extras["residual"],
                               frames - res.extras["module_outputs"][1].recon, atol=1e-5, rtol=0)
    assert res.bits.shape == (2,) and torch.all(torch.isfinite(res.bits)) and torch.all(res.bits > 0)
    assert res.bits.requires_grad
    expected = sum(float(q.entropy_bits.detach()) * q.num_symbols for q in res.extras["quantizers"].values())
    assert float(res.bits.detach().sum()) == pytest.approx(expected, rel=1e-5)
    # channels are folded into the batch: (B, C, T) in and out, bits per item
    stereo = codec(x.reshape(1, 2, 3000))
    assert stereo.audio.shape == (1, 2, 3000) and stereo.bits.shape == (1,)
    torch.testing.assert_close(stereo.audio.reshape(2, 1, 3000), res.audio)


def test_forward_with_identity_modules_reconstructs_input():
    codec = tiny_cmrl()
    q = codec.coding_modules[0].quantizer

    class Identity(torch.nn.Module):
        def forward(self, r, alpha, hard=None, amp_dtype=None, quantize=True):
            return ModuleOutput(recon=r, code=r, quant=q(torch.zeros(r.shape[0], 2), alpha))

    codec.coding_modules[0] = Identity()
    codec.set_phase("greedy-1")
    x = torch.randn(2, 1, 2500)
    torch.testing.assert_close(codec(x).audio, x, atol=1e-5, rtol=1e-5)


def test_numpy_pipeline_perfect_reconstruction(speech):
    codec = tiny_cmrl()
    geo = codec.geometry(speech.shape[1])
    prep = codec._prepare_channel(speech[0], geo)
    y = codec._synthesize_channel(prep.frames, prep.lsp_indices, prep.gain, geo)
    np.testing.assert_allclose(y, speech[0], atol=1e-6)


def test_lpc_residual_gain_scales_what_the_modules_code(speech):
    """LPC-CMRL scales the LPC residual by 10 before the modules and back before synthesis
    (numpy and torch paths alike); a gain of 1 leaves the stream hash of older configs alone."""
    from neurocodec.codecs.cascade import LpcConfig
    from neurocodec.codecs.cq import CqCodec

    scaled = tiny_cmrl(lpc=True)
    assert scaled.config.lpc.residual_gain == 10.0
    plain = LpcCmrlCodec(replace(scaled.config, lpc=replace(scaled.config.lpc, residual_gain=1.0)))
    geo = scaled.geometry(speech.shape[1])
    a, b = scaled._prepare_channel(speech[0], geo), plain._prepare_channel(speech[0], geo)
    np.testing.assert_array_equal(a.lsp_indices, b.lsp_indices)
    np.testing.assert_allclose(a.frames, 10.0 * b.frames, rtol=1e-5, atol=1e-6)
    # the back end undoes the gain: perfect frames give the (high-passed) input back in both
    y_a = scaled._synthesize_channel(a.frames, a.lsp_indices, a.gain, geo)
    y_b = plain._synthesize_channel(b.frames, b.lsp_indices, b.gain, geo)
    np.testing.assert_allclose(y_a, y_b, atol=1e-5)
    with torch.no_grad():
        fa = scaled.eval()(torch.from_numpy(speech[None, :, :7000])).extras["frames"]
        fb = plain.eval()(torch.from_numpy(speech[None, :, :7000])).extras["frames"]
    torch.testing.assert_close(fa, 10.0 * fb, rtol=1e-4, atol=1e-5)
    assert scaled.config_dict()["lpc"]["residual_gain"] == 10.0
    assert "residual_gain" not in plain.config_dict()["lpc"]
    assert "residual_gain" not in CqCodec.for_bitrate(16).config_dict()["lpc"]
    with pytest.raises(ValueError, match="residual_gain"):
        LpcConfig(residual_gain=0.0)


def test_phases_schedule_and_freezing():
    codec = tiny_cmrl()
    names = [p.name for p in codec.training_phases()]
    assert names == ["pretrain-1", "greedy-1", "pretrain-2", "greedy-2", "finetune"]
    # factors of train.lr (1e-4 in the recipe): zhen2019 §3.1's 1e-4, 2e-5, 2e-5
    lrs = {p.name: p.lr_factor for p in codec.training_phases()}
    assert lrs == {"pretrain-1": 1.0, "greedy-1": 1.0, "pretrain-2": 1.0, "greedy-2": 0.2, "finetune": 0.2}
    assert all(p.lr is None for p in codec.training_phases())  # train.lr always applies
    sched = codec.phases(1000)
    assert [p.steps for p in sched] == [166, 167, 166, 167, 334]
    assert sched[3].trainable == ("coding_modules.1.",) and sched[2].trainable == ("coding_modules.1.autoencoder.",)
    assert [p.quantize for p in sched] == [False, True, False, True, True]
    assert [p.kmeans for p in sched] == [False, True, False, True, False]
    plain = tiny_cmrl(pretrain_share=0.0)
    assert [p.name for p in plain.training_phases()] == ["greedy-1", "greedy-2", "finetune"]
    assert [p.steps for p in plain.phases(1000)] == [333, 333, 334]
    codec.set_phase("greedy-2")
    trained = [m for m in codec.coding_modules if all(p.requires_grad for p in m.parameters())]
    assert trained == [codec.coding_modules[1]]
    out = codec.loss(torch.randn(2, 1, 2000) * 0.1)
    out.total.backward()
    assert all(p.grad is None for p in codec.coding_modules[0].parameters())
    assert all(p.grad is not None for p in codec.coding_modules[1].parameters())
    # the frozen module is hard-quantized, as at test time
    q0 = out.result.extras["quantizers"]["module1"]
    torch.testing.assert_close(q0.output, q0.hard)
    codec.set_phase("greedy-1")
    assert len(codec(torch.randn(1, 1, 1000)).extras["module_outputs"]) == 1
    with pytest.raises(UserError, match="greedy-9"):
        codec.set_phase("greedy-9")


def test_loss_terms_and_rate_control():
    codec = tiny_cmrl(rate_control="hinge").train()
    x = torch.randn(2, 1, 2000) * 0.1
    out = codec.loss(x)
    for key in ("loss/total", "loss/time_mse", "loss/mel", "loss/quantization", "loss/entropy",
                "rate/estimated_kbps", "rate/entropy_bits/module1", "metrics/snr_db"):
        assert key in out.terms
    target = codec.target_kbps_for_phase()
    over = max(float(out.terms["rate/estimated_kbps"]) - 0.97 * target, 0.0)
    assert over > 0  # an untrained model is far above 15.85 kbps: the hinge is active
    expected = (out.terms["loss/time_mse"] + out.terms["loss/mel"] + 0.1 * out.terms["loss/quantization"]
                + 0.1 * over)
    assert float(out.total.detach()) == pytest.approx(float(expected), rel=1e-5)
    assert float(out.terms["loss/mel"]) > 0
    # the hinge's gradient reaches the trained quantizer's soft assignments
    codec.zero_grad()
    codec.training_step(x, 0).total.backward()
    assert codec.coding_modules[0].autoencoder.encoder.output.weight.grad.abs().sum() > 0
    # below the target only rate_lower_penalty acts
    low = tiny_cmrl(bitrate_kbps=1000.0, rate_lower_penalty=0.5, rate_control="hinge").train()
    o = low.loss(x)
    under = 0.97 * 1000.0 - float(o.terms["rate/estimated_kbps"])
    assert under > 0 and float(o.terms["loss/rate"]) == pytest.approx(0.5 * under, rel=1e-5)
    # without rate control the papers' lambda_4 * E term is used
    plain = tiny_cmrl(rate_control="fixed").train()
    o = plain.loss(x)
    expected = (o.terms["loss/time_mse"] + o.terms["loss/mel"] + 0.1 * o.terms["loss/quantization"]
                + 0.05 * o.terms["loss/entropy"])
    assert float(o.total.detach()) == pytest.approx(float(expected), rel=1e-5)
    assert codec.validation_step(x)["loss/total"] > 0
    assert codec.reconstruct(x).shape == x.shape and codec.training


def test_forward_rejects_bad_input():
    codec = tiny_cmrl()
    with pytest.raises(AudioError):
        codec(torch.zeros(2, 3000))
    with pytest.raises(AudioError):
        codec(np.zeros((1, 1, 100)))
    with pytest.raises(AudioError):
        codec(torch.zeros(1, 0, 100))


# -- bitstream ----------------------------------------------------------------------------------
def test_compress_decompress_shapes_and_determinism():
    codec = tiny_cmrl(8.85).eval()
    rng = np.random.default_rng(0)
    audio = (0.1 * rng.standard_normal((2, 20000))).astype(np.float32)
    enc = codec.compress(audio, 17.7)  # the total over both channels: 8.85 each
    assert enc.num_channels == 2 and enc.num_samples == 20000 and enc.bitrate_kbps == pytest.approx(17.7)
    assert len(enc.chunks) == -(-(-(-(20000 + 32) // 480)) // 32)
    assert codec.compress(audio, 17.7).chunks == enc.chunks
    with pytest.raises(BitrateError, match="per channel"):
        codec.compress(audio, 8.85)
    y = codec.decompress(enc.chunks, 2, 20000, enc.bitrate_kbps)
    assert y.shape == (2, 20000) and y.dtype == np.float32 and np.all(np.isfinite(y))
    np.testing.assert_array_equal(codec.decompress(enc.chunks, 2, 20000, enc.bitrate_kbps), y)
    # channels are coded independently
    mono = codec.decompress(codec.compress(audio[1:]).chunks, 1, 20000, 8.85)
    np.testing.assert_array_equal(mono[0], y[1])


def test_bitstream_independent_of_thread_count():
    codec = tiny_cmrl(lpc=True).eval()
    rng = np.random.default_rng(1)
    audio = (0.1 * rng.standard_normal((1, 16000))).astype(np.float32)
    torch.set_num_threads(1)
    enc1 = codec.compress(audio)
    dec1 = codec.decompress(enc1.chunks, 1, 16000, enc1.bitrate_kbps)
    torch.set_num_threads(2)
    enc2 = codec.compress(audio)
    dec2 = codec.decompress(enc1.chunks, 1, 16000, enc1.bitrate_kbps)
    assert enc1.chunks == enc2.chunks
    np.testing.assert_array_equal(dec1, dec2)


def test_eval_forward_matches_the_decoded_bitstream(speech):
    codec = tiny_cmrl(lpc=True).eval()
    x = speech[:, :7000]  # one chunk: same network batches in forward and in the codec
    with torch.no_grad():
        res = codec(torch.from_numpy(x[None]))
    sym = codec.analyze_symbols(x)
    for name, idx in res.extras["indices"].items():
        np.testing.assert_array_equal(idx.reshape(sym[name].shape).numpy(), sym[name])
    enc = codec.compress(x)
    y = codec.decompress(enc.chunks, 1, x.shape[1], enc.bitrate_kbps)
    np.testing.assert_allclose(res.audio[0].numpy(), y, atol=1e-5 * max(1.0, np.abs(y).max()))


def test_pair_huffman_tables_round_trip_and_shrink_the_stream(speech):
    codec = tiny_cmrl(lpc=True).eval()
    sym = codec.analyze_symbols(speech)
    assert sym["lsp"].shape[1] == 16 and sym["module1"].shape[1] == 256
    uniform = codec.compress(speech)
    y_uniform = codec.decompress(uniform.chunks, 1, speech.shape[1], 15.85)
    counts = codec.count_symbols(sym)
    assert isinstance(counts["module1"], SymbolCounts)
    codec.fit_entropy_tables(counts)
    fitted = codec.compress(speech)
    assert fitted.num_bytes < uniform.num_bytes
    # the payload is exactly the pair-Huffman cost of the symbols (+ header, byte padding)
    geo = codec.geometry(speech.shape[1])
    bits = 0
    for k in range(geo.num_chunks):
        chunk_bits = 0
        for name, table in codec.entropy_tables.items():
            sl = geo.segment_slice(k) if name == "lsp" else geo.frame_slice(k)
            chunk_bits += table.huffman_bits(sym[name][sl])
        assert len(fitted.chunks[k]) == 1 + 4 + -(-chunk_bits // 8)
        bits += chunk_bits
    y_fitted = codec.decompress(fitted.chunks, 1, speech.shape[1], 15.85)
    np.testing.assert_array_equal(y_uniform, y_fitted)  # same symbols, different code
    with pytest.raises(UserError):
        codec.fit_entropy_tables({"module7": counts["module1"]})


def test_range_coded_variant_decodes_the_same_symbols(speech):
    huff = tiny_cmrl(lpc=True).eval()
    rng_codec = tiny_cmrl(lpc=True, entropy_coder="range").eval()
    counts = huff.count_symbols(huff.analyze_symbols(speech))
    huff.fit_entropy_tables(counts)
    rng_codec.fit_entropy_tables(counts)
    a, b = huff.compress(speech), rng_codec.compress(speech)
    assert a.chunks != b.chunks and b.chunks[0][0] == 1
    ya = huff.decompress(a.chunks, 1, speech.shape[1], 15.85)
    yb = rng_codec.decompress(b.chunks, 1, speech.shape[1], 15.85)
    np.testing.assert_array_equal(ya, yb)
    # a chunk records its coder, so either decoder reads both
    np.testing.assert_array_equal(huff.decompress(b.chunks, 1, speech.shape[1], 15.85), ya)


def test_bitstream_errors():
    codec = tiny_cmrl().eval()
    audio = (0.1 * np.random.default_rng(2).standard_normal((1, 9000))).astype(np.float32)
    enc = codec.compress(audio)
    with pytest.raises(BitrateError):
        codec.compress(audio, 23.85)
    with pytest.raises(AudioError):
        codec.compress(np.full((1, 100), np.nan, dtype=np.float32))
    with pytest.raises(AudioError):
        codec.compress(np.zeros(100, dtype=np.float32))
    with pytest.raises(CorruptStreamError):
        codec.decompress(enc.chunks + enc.chunks, 1, 9000, 15.85)
    with pytest.raises(CorruptStreamError):
        codec.decompress([enc.chunks[0][:3]], 1, 9000, 15.85)
    with pytest.raises(CorruptStreamError):
        codec.decompress([enc.chunks[0][: len(enc.chunks[0]) // 2]], 1, 9000, 15.85)
    with pytest.raises(CorruptStreamError):
        codec.decompress([enc.chunks[0] + b"\0" * 16], 1, 9000, 15.85)
    with pytest.raises(CorruptStreamError):
        codec.decompress([bytes([7]) + enc.chunks[0][1:]], 1, 9000, 15.85)
    with pytest.raises(CorruptStreamError):
        codec.decompress(enc.chunks, 0, 9000, 15.85)


# -- checkpoints and the container ------------------------------------------------------------
def test_save_and_load_pretrained(tmp_path, speech):
    codec = tiny_cmrl(8.85, lpc=True).eval()
    codec.fit_entropy_tables(codec.count_symbols(codec.analyze_symbols(speech)))
    path = tmp_path / "lpc_cmrl.safetensors"
    codec.save_pretrained(path)
    loaded = LpcCmrlCodec.from_pretrained(path)
    assert loaded.config == codec.config and loaded.has_trained_weights() and not codec.has_trained_weights()
    assert loaded.config_hash() == codec.config_hash()
    assert loaded.compress(speech).chunks == codec.compress(speech).chunks
    with pytest.raises(WeightsError, match="lpc-cmrl"):
        CmrlCodec.from_pretrained(path)
    with pytest.raises(WeightsError, match="not found"):
        LpcCmrlCodec.from_pretrained(tmp_path / "missing.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError):
        LpcCmrlCodec.from_pretrained(tmp_path / "junk.safetensors")
    # weights are part of the config hash written into streams
    with torch.no_grad():
        loaded.coding_modules[0].quantizer.centroids[0] += 0.01
    assert loaded.config_hash() != codec.config_hash()


def test_round_trip_through_the_container(speech):
    from neurocodec.api import Codec

    codec = Codec(tiny_cmrl().eval())
    data = codec.compress(speech, 16000)
    y, sr = codec.decompress(data)
    assert sr == 16000 and y.shape == speech.shape and np.all(np.isfinite(y))


def test_fit_entropy_coder_on_signals_matches_fit_on_counts(speech):
    a, b = tiny_cmrl(), tiny_cmrl()
    halves = [speech[:, : speech.shape[1] // 2], speech[:, speech.shape[1] // 2:]]
    info = a.fit_entropy_coder(iter(halves))
    counts = [b.count_symbols(b.analyze_symbols(h)) for h in halves]
    b.fit_entropy_tables({n: counts[0][n] + counts[1][n] for n in counts[0]})
    for n in a.quantizer_names:
        assert torch.equal(a.entropy_tables[n].pair_counts, b.entropy_tables[n].pair_counts)
    assert info["seconds"] == pytest.approx(speech.shape[1] / 16000)
    assert 0 < info["pair_entropy_bits"]["module1"] <= info["entropy_bits"]["module1"] <= 5.0
    with pytest.raises(UserError, match="no audio"):
        tiny_cmrl().fit_entropy_coder([])


def test_best_coder_keeps_the_shorter_chunk_and_decodes(speech):
    huff = tiny_cmrl().eval()
    huff.fit_entropy_tables(huff.count_symbols(huff.analyze_symbols(speech)))
    coded = {}
    for coder in ("huffman", "range", "best"):
        m = tiny_cmrl(entropy_coder=coder).eval()
        m.load_state_dict(huff.state_dict())
        coded[coder] = m.compress(speech)
        y = m.decompress(coded[coder].chunks, 1, speech.shape[1], 15.85)
        np.testing.assert_array_equal(y, huff.decompress(coded["huffman"].chunks, 1, speech.shape[1], 15.85))
    for k, c in enumerate(coded["best"].chunks):
        assert len(c) == min(len(coded["huffman"].chunks[k]), len(coded["range"].chunks[k]))
    with pytest.raises(ValueError, match="entropy_coder"):
        tiny_cmrl(entropy_coder="zip")
