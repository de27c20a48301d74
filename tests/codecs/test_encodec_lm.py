"""The code LM's integer inference (defossez2022 §3.3): CDFs are bit-exact between all frames at
once and one frame at a time with the KV cache, over inputs longer than the attention window, with
1 and 2 torch threads; they track the float model; LM-coded chunks round-trip."""

import numpy as np
import pytest
import torch

from neurocodec.codecs.encodec_lm import CodeLM, IntegerLM, LmCodingState


def _lm(seed=0, n_q=4, card=64):
    torch.manual_seed(seed)
    lm = CodeLM(n_q, card, dim=32, layers=2, heads=4, ff=64, past_context=20)
    with torch.no_grad():
        for p in lm.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    return lm.eval()


def _codes(n_q=4, t=70, card=64, seed=1):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, card, size=(n_q, 1))
    walk = (base + np.cumsum(rng.integers(-2, 3, size=(n_q, t)), axis=1)) % card
    return walk.astype(np.int64)


def _all_at_once(ilm, codes, split=None):
    st = LmCodingState(ilm, codes.shape[0])
    if split is None:
        return st.cdfs_for(codes)
    return np.concatenate([st.cdfs_for(codes[:, a:b]) for a, b in zip([0] + split, split + [codes.shape[1]])])


def _one_at_a_time(ilm, codes):
    st = LmCodingState(ilm, codes.shape[0])
    out = []
    for t in range(codes.shape[1]):
        out.append(st.next_cdf())
        st.push(codes[:, t])
    return np.stack(out)


def test_cdfs_are_valid_tables():
    ilm = IntegerLM(_lm())
    cdf = _all_at_once(ilm, _codes(t=10))
    assert cdf.shape == (10, 4, 65)
    assert (cdf[..., 0] == 0).all() and (cdf[..., -1] == 2 ** 20).all()
    assert (np.diff(cdf, axis=-1) >= 1).all()


@pytest.mark.parametrize("threads", [1, 2])
def test_batch_and_step_cdfs_are_bit_exact(threads):
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        ilm = IntegerLM(_lm())
        codes = _codes(t=70)  # > 3x the attention window of 20 frames
        whole = _all_at_once(ilm, codes)
        assert np.array_equal(whole, _one_at_a_time(ilm, codes))
        assert np.array_equal(whole, _all_at_once(ilm, codes, split=[7, 30, 31, 55]))
    finally:
        torch.set_num_threads(old)


def test_integer_model_tracks_the_float_model():
    lm = _lm()
    ilm = IntegerLM(lm)
    codes = _codes(t=40)
    with torch.no_grad():
        logits = lm(CodeLM.inputs_for(torch.from_numpy(codes)[None]))[0]  # (K, T, card)
    p_float = torch.softmax(logits, -1).permute(1, 0, 2).numpy()
    cdf = _all_at_once(ilm, codes)
    p_int = np.diff(cdf, axis=-1) / 2 ** 20
    assert np.abs(p_float - p_int).max() < 0.02
    # coding cost under the integer tables is within 2% of the float model's cross-entropy
    idx = codes.T
    bits_f = -np.log2(np.take_along_axis(p_float, idx[..., None], -1)).sum()
    bits_i = -np.log2(np.take_along_axis(p_int, idx[..., None], -1)).sum()
    assert abs(bits_i / bits_f - 1) < 0.02


def test_reference_lm_layout_loads():
    lm = _lm()
    ref = {("transformer." + k if k.startswith(("layers.", "norm_in.")) else k): v for k, v in lm.state_dict().items()}
    from neurocodec.codecs.encodec_lm import convert_reference_lm

    lm2 = convert_reference_lm(ref)
    assert lm2.n_q == 4 and lm2.card == 64


def _stepped(ilm, codes, compiled, batch_at=()):
    """CDFs of ``codes`` frame by frame, except frames ``batch_at`` (a list of (a, b)) coded all at once."""
    st = LmCodingState(ilm, codes.shape[0], compiled=compiled)
    out, t = [], 0
    spans = dict(batch_at)
    while t < codes.shape[1]:
        if t in spans:
            out.extend(st.cdfs_for(codes[:, t:spans[t]]))
            t = spans[t]
            continue
        out.append(st.next_cdf())
        st.push(codes[:, t])
        t += 1
    return np.stack(out)


@pytest.mark.parametrize("scale", [1.0, 40.0])
def test_compiled_step_matches_the_numpy_step(scale):
    """The numba step (encodec_lm_step) gives the numpy path's integers, also where activations
    hit the clamps (weights scaled up), across the ring's wrap-around and when batched calls and
    steps alternate on one context."""
    from neurocodec.codecs.encodec_lm_step import HAVE_NUMBA

    if not HAVE_NUMBA:
        pytest.skip("numba not installed")
    lm = _lm(seed=3)
    with torch.no_grad():
        for p in lm.parameters():
            p.mul_(scale)
    ilm = IntegerLM(lm)
    codes = _codes(t=90, seed=4)
    ref = _stepped(ilm, codes, compiled=False)
    assert np.array_equal(ref, _stepped(ilm, codes, compiled=True))
    from neurocodec.codecs.encodec_lm import _step_loaded

    assert _step_loaded()  # later decoders in this process use it from their first frame
    assert np.array_equal(ref, _stepped(ilm, codes, compiled=True, batch_at=[(10, 17), (50, 61)]))
    assert np.array_equal(ref, _all_at_once(ilm, codes))
    for k in (1, 3):  # fewer codebooks than the LM models
        sub = codes[:k]
        assert np.array_equal(_stepped(ilm, sub, compiled=False), _stepped(ilm, sub, compiled=True))


def test_default_decoder_switches_to_the_compiled_step(monkeypatch):
    """``compiled=None`` steps in numpy for COMPILE_AFTER frames, then compiled (with numba),
    in a process that has not loaded the compiled step; at once in one that has. The tables do
    not change at the switch."""
    from neurocodec.codecs import encodec_lm
    from neurocodec.codecs.encodec_lm_step import HAVE_NUMBA

    monkeypatch.setattr(encodec_lm, "COMPILE_AFTER", 12)
    monkeypatch.setattr(encodec_lm, "_step_loaded", lambda: False)  # a fresh process
    ilm = IntegerLM(_lm(seed=5))
    codes = _codes(t=40, seed=6)
    st = LmCodingState(ilm, codes.shape[0])
    out = []
    for t in range(codes.shape[1]):
        assert st.compiled == (HAVE_NUMBA and t >= 12)
        out.append(st.next_cdf())
        st.push(codes[:, t])
    assert isinstance(st.state, encodec_lm.StepState) == HAVE_NUMBA
    assert np.array_equal(np.stack(out), _stepped(ilm, codes, compiled=False))
    monkeypatch.setattr(encodec_lm, "_step_loaded", lambda: True)
    assert LmCodingState(ilm, 2).compiled == HAVE_NUMBA
