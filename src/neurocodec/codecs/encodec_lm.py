"""The code language model of EnCodec (defossez2022 §3.3) and its exact integer inference.

:class:`CodeLM` (trainable, float): at time ``t`` the codes of frame ``t - 1`` (a start token at
``t = 0``) are embedded with one table per codebook and summed, layer-normed, offset by a
sinusoidal position embedding and fed to a causal Transformer (post-norm layers of
multi-head attention with a receptive field of ``past_context`` frames (3.5 s) and a GELU
feed-forward block); one linear head per codebook gives the logits of frame ``t``.  The layout
(parameter names, the attention state that starts with one zero frame) follows the reference
implementation, so official LM checkpoints load (:func:`convert_reference_lm`).

:class:`IntegerLM` runs a :class:`CodeLM` in integer arithmetic so that the entropy coder's
tables are *bit-exact* however the computation is batched (all frames at once in the encoder,
one frame at a time with a KV cache in the decoder) and however many threads torch uses.
Weights and activations are integers (activations at ``2^-10``); they are held in float64
numpy arrays, where sums of products of such integers are exact (every partial sum stays below
``2^53``, which the clamps guarantee), so no summation order can change a result.  The only
non-integer steps are single IEEE operations applied elementwise (division, square root,
multiplication), whose results are correctly rounded and so do not depend on vectorisation;
each is followed by rounding back to the integer grid.  GELU and the exponentials of the
softmaxes are integer lookup tables.  The output distribution of each codebook is an integer
frequency table ``exp(-(max - logit))`` on a 1/64-nat grid, normalised with integer arithmetic to
a ``2^20`` total (every symbol at least 1): the range coder's CDF.  (Upstream codes from float
softmaxes rounded to 1e-6, which breaks on tiny batch/stream differences: encodec PR#95.)
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

#: fractional bits of activations (values are integers times 2^-ACT_BITS)
ACT_BITS = 10
#: activations are clamped to +-2^ACT_CLAMP_BITS (keeps every exact sum below 2^53)
ACT_CLAMP_BITS = 18
#: CDF total of the coded distributions
CDF_PRECISION = 20
#: grid of the softmax exponent tables (steps per nat)
ATT_RES, OUT_RES = 64, 64
_ATT_ZMAX, _OUT_ZMAX = 64 * 24, 64 * 24


def sin_embedding(positions: np.ndarray, dim: int, max_period: float = 10000.0) -> np.ndarray:
    """``[cos(p / max_period^(i / (h - 1))), sin(...)]`` for ``i < h = dim / 2`` (float64)."""
    half = dim // 2
    adim = np.arange(half, dtype=np.float64)[None, :]
    phase = positions.astype(np.float64)[:, None] / (max_period ** (adim / (half - 1)))
    return np.concatenate([np.cos(phase), np.sin(phase)], axis=1)


class _SelfAttention(nn.Module):
    """Multi-head attention weights laid out as ``nn.MultiheadAttention`` (packed in-projection)."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * dim))
        self.out_proj = nn.Linear(dim, dim)
        nn.init.xavier_uniform_(self.in_proj_weight)


class LmLayer(nn.Module):
    """Post-norm Transformer layer: ``x = norm1(x + attn(x)); x = norm2(x + ff(x))``."""

    def __init__(self, dim: int, heads: int, ff: int):
        super().__init__()
        self.self_attn = _SelfAttention(dim, heads)
        self.linear1 = nn.Linear(dim, ff)
        self.linear2 = nn.Linear(ff, dim)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)


class CodeLM(nn.Module):
    """Float Transformer LM over RVQ codes (training and reference inference)."""

    def __init__(self, n_q: int, card: int = 1024, dim: int = 200, layers: int = 5, heads: int = 8, ff: int = 800,
                 past_context: int = 262):
        super().__init__()
        self.n_q, self.card, self.dim, self.heads, self.past_context = n_q, card, dim, heads, past_context
        self.emb = nn.ModuleList([nn.Embedding(card + 1, dim) for _ in range(n_q)])
        self.norm_in = nn.LayerNorm(dim)
        self.layers = nn.ModuleList([LmLayer(dim, heads, ff) for _ in range(layers)])
        self.linears = nn.ModuleList([nn.Linear(dim, card) for _ in range(n_q)])

    @staticmethod
    def inputs_for(codes: torch.Tensor) -> torch.Tensor:
        """Inputs ``(B, K, T)`` for codes ``(B, K, T)``: the previous frame's codes + 1, 0 at t = 0."""
        return F.pad(codes[..., :-1] + 1, (1, 0))

    def forward(self, inputs: torch.Tensor, offset: int = 0) -> torch.Tensor:
        """Logits ``(B, K, T, card)`` of every frame from a fresh context (training)."""
        b, k, t = inputs.shape
        h = sum(self.emb[i](inputs[:, i]) for i in range(k))
        h = self.norm_in(h)
        pos = torch.from_numpy(sin_embedding(np.arange(offset, offset + t), self.dim)).to(h.dtype)
        h = h + pos[None]
        qpos = torch.arange(1, t + 1)[:, None]
        kpos = torch.arange(0, t + 1)[None, :]
        delta = qpos - kpos
        mask = ~((delta >= 0) & (delta <= self.past_context))
        for layer in self.layers:
            kv = torch.cat([h.new_zeros(b, 1, self.dim), h], 1)
            a = layer.self_attn
            q = F.linear(h, a.in_proj_weight[:self.dim], a.in_proj_bias[:self.dim])
            kk = F.linear(kv, a.in_proj_weight[self.dim:2 * self.dim], a.in_proj_bias[self.dim:2 * self.dim])
            vv = F.linear(kv, a.in_proj_weight[2 * self.dim:], a.in_proj_bias[2 * self.dim:])
            hd = self.dim // self.heads
            q = q.view(b, t, self.heads, hd).transpose(1, 2)
            kk = kk.view(b, t + 1, self.heads, hd).transpose(1, 2)
            vv = vv.view(b, t + 1, self.heads, hd).transpose(1, 2)
            att = F.scaled_dot_product_attention(q, kk, vv, attn_mask=~mask)
            att = a.out_proj(att.transpose(1, 2).reshape(b, t, self.dim))
            h = layer.norm1(h + att)
            h = layer.norm2(h + layer.linear2(F.gelu(layer.linear1(h))))
        return torch.stack([lin(h) for lin in self.linears[:k]], dim=1)

    def loss(self, codes: torch.Tensor, offset: int = 0) -> torch.Tensor:
        """Cross-entropy (nats per code) of codes ``(B, K, T)``."""
        logits = self(self.inputs_for(codes), offset)
        return F.cross_entropy(logits.reshape(-1, self.card), codes.reshape(-1))


def convert_reference_lm(state) -> CodeLM:
    """A :class:`CodeLM` from an official ``encodec_lm_*.th`` state dict."""
    n_q = sum(1 for k in state if k.startswith("emb.") and k.endswith(".weight"))
    card, dim = state["linears.0.weight"].shape
    layers = 1 + max(int(k.split(".")[2]) for k in state if k.startswith("transformer.layers."))
    ff = state["transformer.layers.0.linear1.weight"].shape[0]
    frame_rate = 75 if n_q == 32 else 150
    lm = CodeLM(n_q, card, dim, layers, 8, ff, int(3.5 * frame_rate))
    new = {k.replace("transformer.", "", 1): v for k, v in state.items()}
    lm.load_state_dict(new)
    return lm.eval()


# ---------------------------------------------------------------------------------------------
# exact integer inference (numpy float64 arrays holding integers)
# ---------------------------------------------------------------------------------------------
def _q(t: torch.Tensor, bits: int | None = None) -> tuple[np.ndarray, int]:
    """Integer version of a weight: ``round(t * 2^s)`` with the largest ``s <= 14`` keeping
    ``|int| < 2^15`` (float64 array) and ``s``."""
    t = t.detach().to(device="cpu", dtype=torch.float64)
    if bits is None:
        m = float(t.abs().max()) if t.numel() else 0.0
        bits = 14 if m == 0 else int(min(14, math.floor(math.log2((2 ** 15 - 1) / m))))
    return torch.round(t * 2.0 ** bits).numpy(), bits


_LIM = float(2 ** ACT_CLAMP_BITS)


def _clip(x: np.ndarray) -> np.ndarray:
    return np.clip(x, -_LIM, _LIM)


_BLAS: list = []


def _numpy_blas_threads():
    """numpy's and scipy's BLAS held to torch's thread count (a context): their own default starts
    a thread per core, which spins against the codec's other work."""
    if not _BLAS:
        try:  # scipy's BLAS (the one numba's np.dot calls in the compiled step) loaded first, so
            import scipy.linalg.cython_blas  # noqa: F401  # that the controller sees it too
        except ImportError:
            pass
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:  # e.g. the lent GPU machine's bare environment: numpy's default
            _BLAS.append(None)
        else:
            _BLAS.append(ThreadpoolController())
    if _BLAS[0] is None:
        return contextlib.nullcontext()
    return _BLAS[0].limit(limits=torch.get_num_threads(), user_api="blas")


class _IntLinear:
    def __init__(self, w: torch.Tensor, b: torch.Tensor | None):
        wq, self.s = _q(w)
        self.w = wq  # (out, in), C-contiguous
        self.wt = wq.T  # the same memory as (in, out): BLAS takes either layout without a copy
        self.b = None if b is None else torch.round(b.detach().to(device="cpu", dtype=torch.float64) * 2.0 ** (self.s + ACT_BITS)).numpy()

    def __call__(self, x: np.ndarray) -> np.ndarray:
        y = x @ self.wt
        if self.b is not None:
            y = y + self.b
        return _clip(np.round(y * 2.0 ** (-self.s)))


class _IntLayerNorm:
    def __init__(self, ln: nn.LayerNorm):
        self.g = (torch.round(ln.weight.detach().cpu().double() * 2 ** 12) / 2 ** 12).numpy()
        self.b = (torch.round(ln.bias.detach().cpu().double() * 2 ** 12) / 2 ** 12).numpy()
        self.eps = float(ln.eps)

    def constant(self, n: int) -> float:
        """The variance's additive term ``eps n^2 2^(2 ACT_BITS)`` (one rounding per product, in
        this order: the compiled step uses the same float)."""
        return self.eps * n * n * 2.0 ** (2 * ACT_BITS)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        n = x.shape[-1]
        s1 = x.sum(-1, keepdims=True)
        s2 = (x * x).sum(-1, keepdims=True)
        var_num = n * s2 - s1 * s1
        denom = np.sqrt(var_num + self.constant(n))
        y = (n * x - s1) / denom
        y = y * self.g
        y = y + self.b
        return _clip(np.round(y * 2.0 ** ACT_BITS))


def _gelu_table() -> np.ndarray:
    r = 2 ** 15
    vals = [round(0.5 * (i / 2 ** ACT_BITS) * (1 + math.erf(i / 2 ** ACT_BITS / math.sqrt(2))) * 2 ** ACT_BITS)
            for i in range(-r, r + 1)]
    return np.array(vals, dtype=np.float64)


def _exp_table(res: int, zmax: int, scale: int) -> np.ndarray:
    vals = [round(scale * math.exp(-z / res)) for z in range(zmax)] + [0]
    return np.array(vals, dtype=np.float64)


_TABLES: dict[str, np.ndarray] = {}


def _tables() -> dict[str, np.ndarray]:
    if not _TABLES:
        _TABLES["gelu"] = _gelu_table()
        _TABLES["att"] = _exp_table(ATT_RES, _ATT_ZMAX, 2 ** 16)
        _TABLES["out"] = _exp_table(OUT_RES, _OUT_ZMAX, 2 ** 20).astype(np.int64)
    return _TABLES


def _gelu_int(x: np.ndarray) -> np.ndarray:
    r = 2 ** 15
    y = _tables()["gelu"][(np.clip(x, -r, r) + r).astype(np.int64)]
    return np.where(x > r, x, np.where(x < -r, 0.0, y))


@dataclass
class LmState:
    """KV cache of every layer (integer keys/values of the last ``past_context`` frames, starting
    with the zero frame), the next position and the previous frame's codes."""

    keys: list[np.ndarray]
    values: list[np.ndarray]
    position: int
    prev: np.ndarray | None


@dataclass
class StepState:
    """The same context for the compiled one-frame step: rings of keys and values ``(L, d,
    past_context + 1)``, ``m`` valid slots, the next frame's ``slot``."""

    keys: np.ndarray
    values: np.ndarray
    m: int
    slot: int
    position: int
    prev: np.ndarray | None


class IntegerLM:
    """Exact integer inference of a :class:`CodeLM` (see the module docstring), in numpy: one
    implementation for a batch of frames (the encoder) and for one frame (the decoder's step,
    where torch's per-operation overhead would dominate)."""

    def __init__(self, lm: CodeLM):
        lm = lm.eval()
        self.n_q, self.card, self.dim, self.heads = lm.n_q, lm.card, lm.dim, lm.heads
        self.hd = self.dim // self.heads
        self.past_context = lm.past_context
        self.emb = [torch.round(e.weight.detach().cpu().double() * 2 ** ACT_BITS).numpy() for e in lm.emb]
        self.norm_in = _IntLayerNorm(lm.norm_in)
        self.layers = []
        d = self.dim
        for layer in lm.layers:
            a = layer.self_attn
            self.layers.append({
                "q": _IntLinear(a.in_proj_weight[:d], a.in_proj_bias[:d]),
                "k": _IntLinear(a.in_proj_weight[d:2 * d], a.in_proj_bias[d:2 * d]),
                "v": _IntLinear(a.in_proj_weight[2 * d:], a.in_proj_bias[2 * d:]),
                "o": _IntLinear(a.out_proj.weight, a.out_proj.bias),
                "f1": _IntLinear(layer.linear1.weight, layer.linear1.bias),
                "f2": _IntLinear(layer.linear2.weight, layer.linear2.bias),
                "n1": _IntLayerNorm(layer.norm1), "n2": _IntLayerNorm(layer.norm2),
            })
        # all codebook heads as one matrix (one shift for all), so one matmul gives every logit
        self.heads_w = _IntLinear(torch.cat([lin.weight for lin in lm.linears]),
                                  torch.cat([lin.bias for lin in lm.linears]))
        # logits (scale 2^ACT_BITS) -> steps of 1/OUT_RES nat: an exact power-of-two scaling
        self.att_scale = ATT_RES / (2.0 ** (2 * ACT_BITS) * math.sqrt(self.hd))
        self._pos_blocks: dict[int, np.ndarray] = {}

    def new_state(self) -> LmState:
        zero = np.zeros((1, self.dim))
        keys = [lay["k"](zero) for lay in self.layers]
        values = [lay["v"](zero) for lay in self.layers]
        return LmState(keys, values, 0, None)

    def _positions(self, start: int, n: int) -> np.ndarray:
        """Integer position embeddings, computed in fixed blocks of 1024 positions (the same
        numpy call for a position whatever the batching)."""
        out = []
        for p in range(start, start + n):
            blk = p // 1024
            if blk not in self._pos_blocks:
                if len(self._pos_blocks) > 8:
                    self._pos_blocks.clear()
                e = sin_embedding(np.arange(blk * 1024, blk * 1024 + 1024), self.dim)
                self._pos_blocks[blk] = np.round(e * 2 ** ACT_BITS)
            out.append(self._pos_blocks[blk][p % 1024])
        return np.stack(out)

    def extend(self, state: LmState, inputs: np.ndarray) -> np.ndarray:
        """Run frames with input tokens ``inputs`` ``(n, K)`` (previous codes + 1, 0 = start) from
        ``state`` (updated in place); returns integer logits ``(n, K, card)``."""
        with _numpy_blas_threads():
            return self._extend(state, np.ascontiguousarray(inputs, dtype=np.int64))

    def _extend(self, state: LmState, idx: np.ndarray) -> np.ndarray:
        n, k = idx.shape
        h = np.zeros((n, self.dim))
        for j in range(k):
            h = h + self.emb[j][idx[:, j]]
        h = self.norm_in(_clip(h))
        h = _clip(h + self._positions(state.position, n))
        att_t, exp_t = self.att_scale, _tables()["att"]
        for li, lay in enumerate(self.layers):
            q = lay["q"](h)
            keys = np.concatenate([state.keys[li], lay["k"](h)], 0)
            vals = np.concatenate([state.values[li], lay["v"](h)], 0)
            past, m = state.keys[li].shape[0], keys.shape[0]
            # query i (0-based in this call) sits at key index past + i and sees keys
            # past + i - past_context .. past + i
            lag = (np.arange(n)[:, None] + past) - np.arange(m)[None, :]
            valid = (lag >= 0) & (lag <= self.past_context)
            qh = q.reshape(n, self.heads, self.hd).transpose(1, 0, 2)  # (H, n, hd)
            kh = keys.reshape(m, self.heads, self.hd).transpose(1, 2, 0)  # (H, hd, m)
            vh = vals.reshape(m, self.heads, self.hd).transpose(1, 0, 2)  # (H, m, hd)
            sc = np.where(valid, qh @ kh, -2.0 ** 60)  # exact integer scores
            smax = sc.max(axis=2, keepdims=True)
            z = np.clip(np.round((smax - sc) * att_t), 0, _ATT_ZMAX).astype(np.int64)
            e = exp_t[z]
            out = np.round((e @ vh) / e.sum(2, keepdims=True)).transpose(1, 0, 2).reshape(n, self.dim)
            h = lay["n1"](_clip(h + lay["o"](out)))
            h = lay["n2"](_clip(h + lay["f2"](_gelu_int(lay["f1"](h)))))
            keep = self.past_context
            state.keys[li] = keys[-keep:]
            state.values[li] = vals[-keep:]
        state.position += n
        hw = self.heads_w
        # the first k heads are the first k * card rows of the untransposed weight, a contiguous
        # block (a column slice of the transposed one was copied on every call: 13 MB a frame at
        # the paper's size and 6 kbps)
        y = h @ hw.w[:k * self.card].T + hw.b[:k * self.card]
        return _clip(np.round(y * 2.0 ** (-hw.s))).reshape(n, k, self.card)

    def cdfs(self, logits: np.ndarray) -> np.ndarray:
        """Integer CDFs ``(..., card + 1)`` of total ``2^20`` from integer logits ``(..., card)``."""
        lg = np.asarray(logits).astype(np.int64)
        m = lg.max(-1, keepdims=True)
        shift = ACT_BITS - int(math.log2(OUT_RES))
        z = np.clip((m - lg) >> shift, 0, _OUT_ZMAX)  # floor((max - logit) * OUT_RES / 2^ACT_BITS)
        f = _tables()["out"][z]
        total = 1 << CDF_PRECISION
        fs = f.sum(-1, keepdims=True)
        freq = 1 + (f * (total - self.card)) // fs
        rest = total - freq.sum(-1, keepdims=True)
        top = f.argmax(-1)[..., None]  # the first largest, as torch.argmax
        np.put_along_axis(freq, top, np.take_along_axis(freq, top, -1) + rest, -1)
        cdf = np.zeros((*freq.shape[:-1], self.card + 1), dtype=np.int64)
        cdf[..., 1:] = freq.cumsum(-1)
        return cdf

    # -- the compiled one-frame step (decoder) ----------------------------------------------
    def _packed(self) -> dict:
        """Weights of every layer stacked for :func:`encodec_lm_step.lm_step` (built once): the
        integer weights as int16 (they are below ``2^15``, :func:`_q`), the rest as they are."""
        if getattr(self, "_pack", None) is None:
            lay = self.layers
            lin = ("q", "k", "v", "o", "f1", "f2")

            def i16(w: np.ndarray) -> np.ndarray:
                if w.size and np.abs(w).max() >= 2 ** 15:
                    raise ValueError("LM weights do not fit int16")
                return w.astype(np.int16)

            card1 = max(e.shape[0] for e in self.emb)
            emb = np.zeros((len(self.emb), card1, self.dim))
            for j, e in enumerate(self.emb):
                emb[j, :e.shape[0]] = e
            self._pack = dict(
                emb=emb,
                ln_in=np.stack([self.norm_in.g, self.norm_in.b]), ln_in_c=self.norm_in.constant(self.dim),
                w_qkv=i16(np.stack([np.stack([ly[n].w for n in "qkv"]) for ly in lay])),
                b_qkv=np.stack([np.stack([ly[n].b for n in "qkv"]) for ly in lay]),
                w_o=i16(np.stack([ly["o"].w for ly in lay])), b_o=np.stack([ly["o"].b for ly in lay]),
                w_1=i16(np.stack([ly["f1"].w for ly in lay])), b_1=np.stack([ly["f1"].b for ly in lay]),
                w_2=i16(np.stack([ly["f2"].w for ly in lay])), b_2=np.stack([ly["f2"].b for ly in lay]),
                scales=np.array([[2.0 ** (-ly[n].s) for n in lin] for ly in lay]),
                ln=np.stack([np.stack([[ly[n].g, ly[n].b] for n in ("n1", "n2")]) for ly in lay]),
                ln_c=np.array([[ly[n].constant(self.dim) for n in ("n1", "n2")] for ly in lay]),
                heads_w=i16(self.heads_w.w), heads_b=self.heads_w.b, heads_scale=2.0 ** (-self.heads_w.s),
            )
        return self._pack

    def step_state(self, state: LmState) -> StepState:
        """``state`` as rings (keys in any order: one query's attention does not depend on it)."""
        rows = self.past_context + 1
        keys = np.zeros((len(self.layers), self.dim, rows))
        vals = np.zeros_like(keys)
        m = state.keys[0].shape[0]
        for li in range(len(self.layers)):
            keys[li, :, :m] = state.keys[li].T
            vals[li, :, :m] = state.values[li].T
        return StepState(keys, vals, m, m % rows, state.position, state.prev)

    def step(self, st: StepState, tokens: np.ndarray) -> np.ndarray:
        """CDFs ``(k, card + 1)`` of the next frame from its input tokens ``(k,)`` (previous codes +
        1, 0 = start): the same integers as ``cdfs(extend(state, tokens[None]))[0]``."""
        from .encodec_lm_step import lm_step

        p, t = self._packed(), _tables()
        rows = st.values.shape[2]
        m = min(st.m + 1, rows)
        cdf = np.empty((len(tokens), self.card + 1), dtype=np.int64)
        with _numpy_blas_threads():
            lm_step(np.ascontiguousarray(tokens, dtype=np.int64), p["emb"], self._positions(st.position, 1)[0],
                    p["ln_in"], p["ln_in_c"], p["w_qkv"], p["b_qkv"], p["w_o"], p["b_o"], p["w_1"], p["b_1"],
                    p["w_2"], p["b_2"], p["scales"], p["ln"], p["ln_c"], st.keys, st.values, m, st.slot,
                    self.heads, p["heads_w"], p["heads_b"], p["heads_scale"], self.att_scale, t["att"],
                    float(_ATT_ZMAX), t["gelu"], t["out"], ACT_BITS - int(math.log2(OUT_RES)), _OUT_ZMAX,
                    CDF_PRECISION, float(2 ** ACT_BITS), _LIM, cdf)
        st.m, st.slot, st.position = m, (st.slot + 1) % rows, st.position + 1
        return cdf


#: decoder frames stepped in numpy before the compiled step takes over (``compiled=None``) in a
#: process that has not loaded it yet: loading costs about 0.4 s, the numpy step 1.5-2 ms more
#: per frame at the paper's size, so short files decode faster without it (3.4 s of 24 kHz audio)
COMPILE_AFTER = 256


def _step_loaded() -> bool:
    """Whether this process has the compiled step loaded already (then it is used at once)."""
    import sys

    mod = sys.modules.get(__package__ + ".encodec_lm_step")
    return bool(mod is not None and getattr(mod, "HAVE_NUMBA", False) and getattr(mod.lm_step, "signatures", None))


class LmCodingState:
    """The coder side of the LM for one channel: CDFs of the next frames, context kept across
    chunks.  The decoder's one-frame steps run in numpy (``compiled=False``) or compiled
    (:mod:`.encodec_lm_step`, ``True``); by default compiled when numba is installed, after the
    first ``COMPILE_AFTER`` frames unless this process has loaded the compiled step already: the
    same integers either way."""

    def __init__(self, lm: IntegerLM, n_q: int, compiled: bool | None = None):
        if n_q > lm.n_q:
            raise ValueError(f"the LM models {lm.n_q} codebooks, not {n_q}")
        self.lm, self.n_q = lm, n_q
        if compiled is None:
            import importlib.util

            if not importlib.util.find_spec("numba"):
                self._compile_at = -1
            else:
                self._compile_at = 0 if _step_loaded() else COMPILE_AFTER
        else:
            self._compile_at = 0 if compiled else -1
        self.state: LmState | StepState = lm.new_state()

    @property
    def compiled(self) -> bool:
        """Whether the next decoder step runs compiled."""
        return 0 <= self._compile_at <= self.state.position

    def _batch_state(self) -> LmState:
        """The context as the batched :meth:`IntegerLM.extend` holds it (from rings if needed)."""
        st = self.state
        if isinstance(st, StepState):
            rows = st.values.shape[2]
            order = (np.arange(st.m) + (st.slot if st.m == rows else 0)) % rows  # oldest first
            keep = order[-self.lm.past_context:]
            st = LmState([np.ascontiguousarray(k[:, keep].T) for k in st.keys],
                         [np.ascontiguousarray(v[:, keep].T) for v in st.values], st.position, st.prev)
            self.state = st
        return st

    def _inputs(self, codes: np.ndarray) -> np.ndarray:
        """Input tokens ``(n, n_q)`` for frames with codes ``(n_q, n)``."""
        prev = self.state.prev
        first = np.zeros(self.n_q, dtype=np.int64) if prev is None else prev + 1
        rest = codes[:, :-1].T + 1
        return np.concatenate([first[None], rest], 0)

    def cdfs_for(self, codes: np.ndarray) -> np.ndarray:
        """CDFs ``(n, n_q, card + 1)`` of frames ``codes`` ``(n_q, n)`` (all at once); advances the context."""
        if codes.shape[1] == 0:
            return np.zeros((0, self.n_q, self.lm.card + 1), dtype=np.int64)
        logits = self.lm.extend(self._batch_state(), self._inputs(codes))
        self.state.prev = codes[:, -1].copy()
        return self.lm.cdfs(logits)

    def next_cdf(self) -> np.ndarray:
        """CDFs ``(n_q, card + 1)`` of the next frame (decoder; call :meth:`push` with its codes)."""
        prev = self.state.prev
        tok = np.zeros(self.n_q, dtype=np.int64) if prev is None else prev + 1
        if self.compiled:
            if not isinstance(self.state, StepState):
                self.state = self.lm.step_state(self.state)
            return self.lm.step(self.state, tok)
        return self.lm.cdfs(self.lm.extend(self._batch_state(), tok[None]))[0]

    def push(self, codes: np.ndarray) -> None:
        self.state.prev = np.asarray(codes, dtype=np.int64).copy()
