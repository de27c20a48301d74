"""One decoder step of :class:`~neurocodec.codecs.encodec_lm.IntegerLM`, compiled with numba.

The range decoder needs the LM's distribution of frame ``t`` before it can read frame ``t``'s
codes, so decoding runs the LM one frame at a time.  In numpy that step is some 250 small array
operations (five layers of attention, layer norms, GELU, clamps) around seven mat-vecs, and their
per-call overhead cost more than the arithmetic (about half of the step at the paper's size).
:func:`lm_step` does the whole step, and the frequency tables of :meth:`IntegerLM.cdfs`, in one
compiled call.  Its mat-vecs read the weights as int16 (they are integers below ``2^15``): the
step is bound by reading them (32 MB a frame in float64 at the paper's size and 6 kbps).

It computes exactly what the numpy path computes: every value is an integer held in float64
(sums of products exact below ``2^53``, so their order is free), and every other operation
(division, square root, scaling, rounding half to even) is the same single IEEE operation in
the same order.  It is compiled *without* ``fastmath`` (no multiply-add fused, nothing
reassociated), except the mat-vec loop, whose exact integer sums do not depend on either; tests
compare its CDFs with the numpy path bit for bit.

The attention cache is a ring of ``past_context + 1`` rows per layer: a single query sees every
cached key, and the softmax and its weighted sum do not depend on the keys' order.
"""

from __future__ import annotations

import numpy as np

try:
    import numba

    _njit = numba.njit(cache=True, nogil=True)  # no fastmath: bit-exact with the numpy path
    # exact integer sums only: reassociation and fused multiply-adds cannot change them
    _njit_sum = numba.njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - the numpy path is used instead
    numba = None
    HAVE_NUMBA = False

    def _njit(f):
        return f

    _njit_sum = _njit


@_njit_sum
def _matvec(w, x, y):
    """``y = w @ x`` for int16 weights ``w`` and integer-valued float64 ``x``: every product and
    partial sum is an integer below ``2^53``, so the sum is exact in any order and the loop may
    be vectorised (reassociated, fused multiply-adds) without changing a bit.  The weights are
    read as int16: a quarter of the memory traffic of float64, which bounds this step."""
    n, m = w.shape
    for o in range(n):
        acc = 0.0
        for i in range(m):
            acc += np.float64(w[o, i]) * x[i]
        y[o] = acc


@_njit
def _linear(w, b, scale, lim, x, out):
    """``out = clip(rint((w @ x + b) * scale), -lim, lim)`` (``_IntLinear``; ``w`` int16)."""
    y = np.empty(out.shape[0])
    _matvec(w, x, y)
    for i in range(out.shape[0]):
        v = np.rint((y[i] + b[i]) * scale)
        out[i] = min(max(v, -lim), lim)


@_njit
def _layer_norm(x, g, b, c, act, lim, out):
    """``_IntLayerNorm`` of ``x`` (``c`` = its constant ``eps * n * n * 2^(2 ACT_BITS)``)."""
    n = x.shape[0]
    s1 = 0.0
    s2 = 0.0
    for i in range(n):
        s1 += x[i]
        s2 += x[i] * x[i]
    var_num = n * s2 - s1 * s1
    denom = np.sqrt(var_num + c)
    for i in range(n):
        y = (n * x[i] - s1) / denom
        y = y * g[i]
        y = y + b[i]
        v = np.rint(y * act)
        out[i] = min(max(v, -lim), lim)


@_njit
def _add_clip(a, b, lim, out):
    """``out = clip(a + b, -lim, lim)``."""
    for i in range(out.shape[0]):
        out[i] = min(max(a[i] + b[i], -lim), lim)


@_njit
def _clip(a, lim, out):
    """``out = clip(a, -lim, lim)``."""
    for i in range(out.shape[0]):
        out[i] = min(max(a[i], -lim), lim)


@_njit
def lm_step(tokens, emb, pos, ln_in, ln_in_c, w_qkv, b_qkv, w_o, b_o, w_1, b_1, w_2, b_2, scales,
            ln, ln_c, keys, vals, m, slot, n_heads, heads_w, heads_b, heads_scale, att_t, att_table,
            att_zmax, gelu_table, out_table, out_shift, out_zmax, precision, act, lim, cdf):
    """One frame: input tokens ``(k,)`` -> integer CDFs, written to ``cdf`` ``(k, card + 1)``.

    ``keys`` and ``vals`` ``(L, d, R)`` are the attention rings: this frame's key
    and value go to slot ``slot``, and the query attends to slots ``0 .. m - 1`` (the caller keeps ``m`` and ``slot``).
    ``scales[l]`` are the factors ``2^-s`` of layer ``l``'s q, k, v, o, f1 and f2 linears;
    ``ln[l]`` the gains and biases of its two layer norms ``(2, 2, d)``, ``ln_c[l]`` their
    constants ``eps n^2 2^(2 ACT_BITS)``; ``emb`` ``(k_max, card + 1, d)``."""
    k = tokens.shape[0]
    d = emb.shape[2]
    hd = d // n_heads
    h = np.zeros(d)
    for j in range(k):
        for i in range(d):
            h[i] = h[i] + emb[j, tokens[j], i]
    tmp = np.empty(d)
    _clip(h, lim, tmp)
    _layer_norm(tmp, ln_in[0], ln_in[1], ln_in_c, act, lim, h)
    _add_clip(h, pos, lim, h)
    qkv = np.empty(3 * d)
    att = np.empty(d)
    o = np.empty(d)
    ff = np.empty(w_1.shape[1])
    e = np.zeros(keys.shape[2])
    r15 = gelu_table.shape[0] // 2
    for li in range(w_o.shape[0]):
        for r in range(3):
            _linear(w_qkv[li, r], b_qkv[li, r], scales[li, r], lim, h, qkv[r * d:(r + 1) * d])
        for i in range(d):
            keys[li, i, slot] = qkv[d + i]
            vals[li, i, slot] = qkv[2 * d + i]
        for hh in range(n_heads):
            a = hh * hd
            sc = np.dot(qkv[a:a + hd], keys[li, a:a + hd])  # (R,): slots >= m are not used
            smax = sc[0]
            for j in range(m):
                if sc[j] > smax:
                    smax = sc[j]
            esum = 0.0
            for j in range(m):
                zz = min(max(np.rint((smax - sc[j]) * att_t), 0.0), att_zmax)
                e[j] = att_table[np.int64(zz)]
                esum += e[j]
            num = np.dot(vals[li, a:a + hd], e)  # e is 0 on the unused slots
            for t in range(hd):
                att[a + t] = np.rint(num[t] / esum)
        _linear(w_o[li], b_o[li], scales[li, 3], lim, att, o)
        _add_clip(h, o, lim, tmp)
        _layer_norm(tmp, ln[li, 0, 0], ln[li, 0, 1], ln_c[li, 0], act, lim, h)
        _linear(w_1[li], b_1[li], scales[li, 4], lim, h, ff)
        for i in range(ff.shape[0]):
            v = ff[i]
            if v > r15:
                ff[i] = v
            elif v < -r15:
                ff[i] = 0.0
            else:
                ff[i] = gelu_table[np.int64(v) + r15]
        _linear(w_2[li], b_2[li], scales[li, 5], lim, ff, o)
        _add_clip(h, o, lim, tmp)
        _layer_norm(tmp, ln[li, 1, 0], ln[li, 1, 1], ln_c[li, 1], act, lim, h)
    card = cdf.shape[1] - 1
    logits = np.empty(k * card)
    _linear(heads_w[:k * card], heads_b[:k * card], heads_scale, lim, h, logits)
    _cdfs(logits, card, out_table, out_shift, out_zmax, precision, cdf)


@_njit
def _cdfs(logits, card, out_table, out_shift, out_zmax, precision, cdf):
    """:meth:`IntegerLM.cdfs` of one frame's integer logits ``(k * card,)``."""
    total = np.int64(1) << precision
    f = np.empty(card, dtype=np.int64)
    for j in range(cdf.shape[0]):
        b = j * card
        mx = logits[b]
        for c in range(card):
            if logits[b + c] > mx:
                mx = logits[b + c]
        mi = np.int64(mx)
        fs = np.int64(0)
        top = 0
        for c in range(card):
            zc = min(max((mi - np.int64(logits[b + c])) >> out_shift, 0), out_zmax)
            f[c] = out_table[zc]
            fs += f[c]
            if f[c] > f[top]:
                top = c
        acc = np.int64(0)
        cdf[j, 0] = 0
        for c in range(card):
            q = 1 + (f[c] * (total - card)) // fs
            acc += q
            cdf[j, c + 1] = q
        cdf[j, top + 1] += total - acc
        for c in range(card):
            cdf[j, c + 1] += cdf[j, c]
