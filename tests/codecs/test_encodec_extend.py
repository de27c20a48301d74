"""Extending a trained EnCodec with more codebooks (neurocodec.train.encodec_extend): the old
tensors are kept bit for bit, streams of the old bandwidths keep their payload and config hash, the
new codebooks lower the latent error, and the LM coder codes the codebooks beyond its LM with the
static tables (round trip, and code lengths those of the two models)."""

import math

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save

from neurocodec.codecs.encodec import EncodecCodec, EncodecConfig
from neurocodec.codecs.encodec_lm import IntegerLM, LmCodingState
from neurocodec.train.encodec_extend import encoder_latents, extend_codebooks

# 64-entry codebooks: 6 bits x 75 frames/s = 0.45 kbps per codebook; 4 codebooks, LM over all 4
BASE = EncodecConfig(n_filters=4, dimension=16, lstm_layers=1, n_q=4, bins=64, bandwidths=(0.9, 1.8),
                     default_kbps=1.8, pad_mode="constant", frames_per_chunk=10, lm_n_q=4, lm_dim=16,
                     lm_layers=2, lm_heads=2, lm_ff=32)


from test_encodec_codec import _signal  # noqa: E402  (the same modulated tone with noise)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    torch.manual_seed(0)
    m = EncodecCodec(BASE)
    m.net.train()
    with torch.no_grad():
        batch = torch.from_numpy(np.stack([_signal(0.5, seed=s) for s in range(4)]))
        for _ in range(3):
            m.net(batch, 4)
        for p in m.lm.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    m.eval()
    m.fit_entropy_coder([_signal(2.0, seed=5)])
    d = tmp_path_factory.mktemp("extend")
    m.half().float()  # what a shipped fp16 file holds
    m.save_pretrained(d / "base.safetensors")
    base = EncodecCodec.from_pretrained(d / "base.safetensors")
    with safe_open(str(d / "base.safetensors"), framework="pt") as f:
        meta = dict(f.metadata())
        state = {k: f.get_tensor(k) for k in f.keys()}
    z, _ = encoder_latents(base, [_signal(2.0, seed=s) for s in range(6, 10)])
    ext = extend_codebooks(base, state, z, 8, [3.6], epochs=3, batch=256, kmeans_rows=400, seed=0)
    import json
    from dataclasses import asdict

    meta["config"] = json.dumps(asdict(ext.config), sort_keys=True)
    (d / "ext.safetensors").write_bytes(save(ext.state, metadata=meta))
    return base, EncodecCodec.from_pretrained(d / "ext.safetensors"), state, ext


def test_old_tensors_kept_and_config_extended(models):
    base, m, state, ext = models
    for k, v in state.items():
        if k != "static_cdf":
            assert torch.equal(ext.state[k], v), k
    assert torch.equal(ext.state["static_cdf"][:4], state["static_cdf"])
    assert ext.state["static_cdf"].shape[0] == 8
    assert m.config.n_q == 8 and m.config.nested_n_q == 4 and m.config.bandwidths == (0.9, 1.8, 3.6)
    assert m.bitrates.choices == (0.9, 1.8, 3.6)
    assert [s.codebook for s in ext.codebooks] == [4, 5, 6, 7]
    for s in ext.codebooks:
        assert s.residual_mse_after < s.residual_mse_before


def test_old_bandwidths_keep_payload_and_hash(models):
    base, m, _, _ = models
    x = _signal(1.4, seed=3)
    for kbps in (0.9, 1.8):
        enc = m.compress(x, kbps)
        assert enc.chunks == base.compress(x, kbps).chunks
        assert m.stream_config_hash(kbps) == base.config_hash()
        # a stream written by the smaller model decodes with the extended one
        np.testing.assert_array_equal(m.decompress(enc.chunks, 1, x.shape[1], kbps),
                                      base.decompress(enc.chunks, 1, x.shape[1], kbps))
    assert m.stream_config_hash(3.6) == m.config_hash() != base.config_hash()


def test_new_codebooks_lower_the_latent_error(models):
    _, m, _, _ = models
    x = _signal(1.3, seed=12)
    z = m.net.encoder(torch.from_numpy(x)[None]).detach()
    errs = []
    for n_q in (4, 6, 8):
        codes = m.encode_codes(x[0], n_q)
        errs.append(float((m.net.quantizer.decode(torch.from_numpy(codes)[:, None]) - z).pow(2).mean()))
    assert errs[0] > errs[1] > errs[2]


def test_lm_coder_codes_the_extra_codebooks_with_the_static_tables(models):
    _, m, _, _ = models
    x = _signal(1.3, seed=4)
    enc = m.compress(x, 3.6)
    assert m.coder_name() == "lm" and all(c[0] == 2 and c[1] == 8 for c in enc.chunks)
    codes = m.encode_codes(x[0], 8)
    y = m.decompress(enc.chunks, 1, x.shape[1], 3.6)
    np.testing.assert_array_equal(y[0], m.decode_codes(codes)[:x.shape[1]])
    # ideal code length: the LM's tables for codebooks 1-4, the static tables for 5-8
    st = LmCodingState(IntegerLM(m.lm), 4)
    cdf = st.cdfs_for(codes[:4]).astype(np.float64)
    p_lm = np.take_along_axis(np.diff(cdf, axis=-1), codes[:4].T[..., None], -1)[..., 0] / 2.0 ** 20
    sc = m.static_cdf.numpy().astype(np.float64)
    p_st = (sc[np.arange(4, 8)[:, None], codes[4:] + 1] - sc[np.arange(4, 8)[:, None], codes[4:]]) / 2.0 ** 16
    bits = -np.log2(p_lm).sum() - np.log2(p_st).sum()
    payload = sum(len(c) - 8 for c in enc.chunks) * 8  # less the chunk head and the length field
    assert bits <= payload <= bits + 64 * len(enc.chunks)


def test_extension_needs_more_codebooks(models):
    base, _, state, _ = models
    z = torch.zeros(10, 16)
    with pytest.raises(ValueError):
        extend_codebooks(base, state, z, 4, [1.8])
    with pytest.raises(ValueError):
        extend_codebooks(base, state, z, 6, [3.6])  # 3.6 kbps needs 8 codebooks
    assert math.isclose(base.net.cfg.kbps_per_codebook, 0.45)
