"""Conditional SampleRNN (fejgin2020 §3.2): causality, look-ahead, tier alignment, and the compiled
generation loop against the teacher-forced network."""

from __future__ import annotations

import importlib
import sys

import numpy as np
import pytest
import torch

from neurocodec.nn import logistic_mixture as dmol
from neurocodec.nn.samplernn import SampleRnn, SampleRnnConfig, pad_conditioning, tier_input_frames

SMALL = dict(rnn_width=16, mlp_width=16, cond_width=8)


def _model(kind: str, **kw) -> SampleRnn:
    torch.manual_seed(3)
    cfg = (SampleRnnConfig.speech if kind == "speech" else SampleRnnConfig.piano)(**{**SMALL, **kw})
    m = SampleRnn(cfg).eval()
    with torch.no_grad():  # larger weights than the init so that every path matters numerically
        for p in m.parameters():
            p.mul_(3.0)
    return m


def _signal(cfg: SampleRnnConfig, nb: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    T = nb * cfg.hop
    x = torch.from_numpy((np.round(rng.standard_normal(cfg.history + T) * 3000) / 32768).astype(np.float32))[None]
    x[:, :cfg.history] = 0
    xhat = torch.from_numpy((rng.standard_normal(cfg.hop * (nb + 3)) * 0.1).astype(np.float32))[None]
    env = torch.from_numpy(rng.integers(-25, 5, (1, nb + 3, cfg.num_bands)).astype(np.float32))
    return x, xhat, env


@pytest.mark.parametrize("kind", ["speech", "piano"])
def test_no_future_sample_leaks_into_a_prediction(kind):
    m = _model(kind)
    cfg = m.config
    x, xhat, env = _signal(cfg, 4)
    P = cfg.history
    with torch.no_grad():
        ref = m(x, xhat, env)
        for t0 in [0, 1, 7, cfg.frame_sizes[2], cfg.frame_sizes[3] - 1, cfg.frame_sizes[3], 700, 1279]:
            y = x.clone()
            y[:, P + t0:] += torch.from_numpy(np.random.default_rng(t0).standard_normal(y.shape[1] - P - t0)
                                              .astype(np.float32)) * 0.1
            out = m(y, xhat, env)
            assert torch.equal(out[:, :t0 + 1], ref[:, :t0 + 1]), t0    # x[t0..] never seen by t <= t0
            if t0 + 1 < out.shape[1]:
                assert not torch.allclose(out[:, t0 + 1], ref[:, t0 + 1])  # but the next sample sees x[t0]


@pytest.mark.parametrize("kind", ["speech", "piano"])
def test_conditioning_looks_ahead_exactly_two_codec_frames(kind):
    m = _model(kind)
    cfg = m.config
    nb = 6
    x, xhat, env = _signal(cfg, nb)
    hop = cfg.hop
    b = 1  # predictions for block 1 (samples 320..639)
    with torch.no_grad():
        ref = m(x, xhat, env)[:, b * hop:(b + 1) * hop]
        far = xhat.clone()
        far[:, hop + (b + 3) * hop:] += 0.3              # decoded samples from block b+3 on
        e = env.clone()
        e[:, b + 4:] += 4          # MDCT frames b+4.. (frame j overlaps blocks j-1 and j; the mdct
        #                            decoder needs frame b+3 to output block b+2)
        assert torch.equal(m(x, far, e)[:, b * hop:(b + 1) * hop], ref)
        near = xhat.clone()
        near[:, hop + (b + 2) * hop + 100] += 0.3         # one decoded sample in block b+2
        assert not torch.allclose(m(x, near, env)[:, b * hop:(b + 1) * hop], ref)
        e = env.clone()
        e[:, b + 3] += 4
        assert not torch.allclose(m(x, xhat, e)[:, b * hop:(b + 1) * hop], ref)


def test_tier_frames_are_the_previous_frame_of_samples():
    x = torch.arange(20, dtype=torch.float32)[None]   # history 4 (values 0..3), then t = 0..15
    fr = tier_input_frames(x, 4, history=4, num_frames=4)
    assert fr[0, 0].tolist() == [0, 1, 2, 3]           # frame 0 (t = 0..3) sees the history
    assert fr[0, 2].tolist() == [8, 9, 10, 11]         # frame 2 (t = 8..11) sees t = 4..7
    fr2 = tier_input_frames(x, 2, history=4, num_frames=8)
    assert fr2[0, 0].tolist() == [2, 3] and fr2[0, 5].tolist() == [12, 13]


@pytest.mark.parametrize("kind", ["speech", "piano"])
def test_compiled_generation_matches_the_teacher_forced_network(kind):
    m = _model(kind)
    cfg = m.config
    rng = np.random.default_rng(1)
    T = 3 * cfg.hop - 17
    xp, ep, nb = pad_conditioning(rng.standard_normal(T).astype(np.float32) * 0.1,
                                  rng.integers(-25, 5, (nb_f := T // cfg.hop + 2, cfg.num_bands)), cfg)
    U = rng.random((2, 2, nb * cfg.hop))
    y, params, _ = m.generate(xp, ep, U, keep_params=True)
    assert y.shape == (2, nb * cfg.hop) and not np.array_equal(y[0], y[1])
    for r in range(2):
        x = torch.from_numpy(np.concatenate([np.zeros(cfg.history, np.float32), y[r]]))[None]
        with torch.no_grad():
            ref = m(x, torch.from_numpy(xp)[None], torch.from_numpy(ep)[None])[0].numpy()
        np.testing.assert_allclose(params[r], ref, atol=2e-4 * max(1.0, float(np.abs(ref).max())))
        v = dmol.sample_from_uniforms(ref, U[r, 0], U[r, 1])
        assert np.mean(v == np.round(y[r] * 32768)) > 0.995   # same draws (float rounding aside)


def test_generation_without_numba_is_the_same_function(monkeypatch):
    m = _model("piano", rnn_width=4, mlp_width=4, cond_width=4)
    cfg = m.config
    rng = np.random.default_rng(2)
    xp, ep, nb = pad_conditioning(rng.standard_normal(320).astype(np.float32) * 0.1,
                                  rng.integers(-25, 5, (3, cfg.num_bands)), cfg)
    U = rng.random((1, 2, nb * cfg.hop))
    fast, _, _ = m.generate(xp, ep, U)
    monkeypatch.setitem(sys.modules, "numba", None)
    import neurocodec.nn.samplernn_kernel as k
    try:
        slow_mod = importlib.reload(k)
        assert not slow_mod.HAVE_NUMBA
        slow, _, _ = m.generate(xp, ep, U)
    finally:
        monkeypatch.undo()
        importlib.reload(k)
    assert np.mean(slow == fast) > 0.99


def test_config_checks_and_round_trip():
    with pytest.raises(ValueError):
        SampleRnnConfig(frame_sizes=(2, 2, 16, 150))
    cfg = SampleRnnConfig.piano(rnn_width=32)
    assert SampleRnnConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.frame_sizes == (8, 8, 64, 320) and cfg.num_logistics == 1


def test_generation_in_segments_carries_the_state_exactly():
    """Segment by segment (state carried) = one pass, given the same precomputed conditioning.
    (Recomputing the conditioning per segment changes float rounding in the convolutions, and a
    sampled signal amplifies any change, so the codec always uses the same segmentation.)"""
    from neurocodec.nn.samplernn_kernel import generate as run_kernel

    m = _model("speech")
    cfg = m.config
    rng = np.random.default_rng(4)
    xp, ep, nb = pad_conditioning(rng.standard_normal(5 * 320).astype(np.float32) * 0.1,
                                  rng.integers(-25, 5, (6, cfg.num_bands)), cfg)
    U = rng.random((2, 2, nb * cfg.hop))
    with torch.no_grad():
        pre = m.precompute(torch.from_numpy(xp)[None], torch.from_numpy(ep)[None])
    tiers = [t[0].numpy() for t in pre.tier_inputs]
    mlp, coded = pre.mlp_input[0].numpy(), pre.coded[0].numpy()
    w = m.kernel_weights()
    whole, _, _ = run_kernel(w, cfg.frame_sizes, cfg.input_gain, tiers, mlp, coded, U)
    parts, state = [], None
    for t0, t1 in [(0, 640), (640, 960), (960, 1600)]:
        seg = [a[t0 // s:t1 // s] for a, s in zip(tiers, cfg.frame_sizes[:0:-1])]
        y, _, state = run_kernel(w, cfg.frame_sizes, cfg.input_gain, seg, mlp[t0:t1], coded[t0:t1],
                                 U[:, :, t0:t1], state=state)
        parts.append(y)
    assert np.array_equal(np.concatenate(parts, axis=1), whole)
