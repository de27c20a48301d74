"""Sample-by-sample generation of :class:`~neurocodec.nn.samplernn.SampleRnn` in one compiled loop.

Everything that does not depend on the generated samples (the conditioning convolutions of
every tier and of the MLP) is computed beforehand for the whole signal in PyTorch
(:meth:`SampleRnn.precompute`).  What is left is the recurrence: per sample the MLP (three
small mat-vecs and the sampler), once per ``TS(2)`` samples tier 2's GRU step, once per
``TS(3)`` tier 3's and once per ``TS(4)`` tier 4's.  That loop is compiled with numba
(``fastmath`` mat-vecs, no Python per sample); realizations (``--mean N``) are independent and
run in parallel over numba threads.  Without numba the very same function runs as plain Python
(identical results, a few hundred times slower).

Random numbers are drawn beforehand (two uniforms per sample: mixture component, logistic
value; :func:`neurocodec.nn.logistic_mixture.sample_from_uniforms` is the reference sampler),
so a decode depends only on the seed, not on the number of threads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

try:  # pragma: no cover - exercised through both paths in tests when numba exists
    import numba

    _njit = numba.njit(cache=True, fastmath=True, nogil=True)
    _njit_par = numba.njit(cache=True, fastmath=True, nogil=True, parallel=True)
    prange = numba.prange
    HAVE_NUMBA = True
except ImportError:  # pragma: no cover
    numba = None

    def _njit(f):
        return f

    _njit_par = _njit
    prange = range
    HAVE_NUMBA = False

__all__ = ["HAVE_NUMBA", "GenState", "generate", "set_threads"]


@_njit
def _matvec(w, x, out):
    """``out = w @ x`` (w: (n, m) float32, x: (m,))."""
    n, m = w.shape
    for i in range(n):
        acc = np.float32(0.0)
        for j in range(m):
            acc += w[i, j] * x[j]
        out[i] = acc


@_njit
def _sigmoid(v):
    return np.float32(1.0) / (np.float32(1.0) + np.exp(-v))


@_njit
def _gru_step(u, h, wih, bih, whh, bhh, gi, gh, hnew):
    """PyTorch GRU cell (gates r, z, n): ``h <- GRU(u, h)``."""
    H = h.shape[0]
    _matvec(wih, u, gi)
    _matvec(whh, h, gh)
    for i in range(H):
        r = _sigmoid(gi[i] + bih[i] + gh[i] + bhh[i])
        z = _sigmoid(gi[H + i] + bih[H + i] + gh[H + i] + bhh[H + i])
        n = np.tanh(gi[2 * H + i] + bih[2 * H + i] + r * (gh[2 * H + i] + bhh[2 * H + i]))
        hnew[i] = (np.float32(1.0) - z) * n + z * h[i]
    for i in range(H):
        h[i] = hnew[i]


@_njit
def _tier_step(tier_in, frame, prev, gain, up_above, wx, wih, bih, whh, bhh, wup, bup, h, u, gi, gh, hn, up_out):
    """One step of a GRU tier: input = precomputed conditioning + W_x (gain * previous frame) +
    the tier above's vector; then the GRU and the upsampling layer into ``up_out``."""
    H = h.shape[0]
    _matvec(wx, prev, u)
    for i in range(H):
        u[i] = u[i] * gain + tier_in[frame, i] + up_above[i]
    _gru_step(u, h, wih, bih, whh, bhh, gi, gh, hn)
    _matvec(wup, h, up_out)
    for i in range(up_out.shape[0]):
        up_out[i] += bup[i]


@_njit
def _run_one(x, P, T, ts1, ts2, ts3, ts4, gain, in4, in3, in2, mlp_in, coded, uc, uv,
             w4x, w4ih, b4ih, w4hh, b4hh, w4up, b4up,
             w3x, w3ih, b3ih, w3hh, b3hh, w3up, b3up,
             w2x, w2ih, b2ih, w2hh, b2hh, w2up, b2up,
             mwx, mw2, mb2, mw3, mb3, mwo, mbo, params_out, keep_params, hs):
    H = w4hh.shape[1]
    Hm = mw2.shape[0]
    L = mwo.shape[0] // 3
    h4 = hs[0]
    h3 = hs[1]
    h2 = hs[2]
    u = np.zeros(H, np.float32)
    gi = np.zeros(3 * H, np.float32)
    gh = np.zeros(3 * H, np.float32)
    hn = np.zeros(H, np.float32)
    up4 = np.zeros(w4up.shape[0], np.float32)
    up3 = np.zeros(w3up.shape[0], np.float32)
    up2 = np.zeros(w2up.shape[0], np.float32)
    zero = np.zeros(H, np.float32)
    a = np.zeros(Hm, np.float32)
    b = np.zeros(Hm, np.float32)
    o = np.zeros(3 * L, np.float32)
    prev1 = np.zeros(ts1, np.float32)
    w = np.zeros(L, np.float64)
    for t in range(T):
        if t % ts4 == 0:
            _tier_step(in4, t // ts4, x[P + t - ts4:P + t], gain, zero, w4x, w4ih, b4ih, w4hh, b4hh,
                       w4up, b4up, h4, u, gi, gh, hn, up4)
        if t % ts3 == 0:
            j = (t % ts4) // ts3
            _tier_step(in3, t // ts3, x[P + t - ts3:P + t], gain, up4[j * H:(j + 1) * H], w3x, w3ih, b3ih,
                       w3hh, b3hh, w3up, b3up, h3, u, gi, gh, hn, up3)
        if t % ts2 == 0:
            j = (t % ts3) // ts2
            _tier_step(in2, t // ts2, x[P + t - ts2:P + t], gain, up3[j * H:(j + 1) * H], w2x, w2ih, b2ih,
                       w2hh, b2hh, w2up, b2up, h2, u, gi, gh, hn, up2)
        j = t % ts2
        for i in range(ts1):
            prev1[i] = x[P + t - ts1 + i] * gain
        _matvec(mwx, prev1, a)
        for i in range(Hm):
            v = a[i] + mlp_in[t, i] + up2[j * Hm + i]
            a[i] = v if v > 0 else np.float32(0.0)
        _matvec(mw2, a, b)
        for i in range(Hm):
            v = b[i] + mb2[i]
            b[i] = v if v > 0 else np.float32(0.0)
        _matvec(mw3, b, a)
        for i in range(Hm):
            v = a[i] + mb3[i]
            a[i] = v if v > 0 else np.float32(0.0)
        _matvec(mwo, a, o)
        for i in range(3 * L):
            o[i] += mbo[i]
        for i in range(L):
            o[L + i] += coded[t]
        if keep_params:
            for i in range(3 * L):
                params_out[t, i] = o[i]
        # sampler (logistic_mixture.sample_from_uniforms), in double precision
        top = -1e30
        for i in range(L):
            if o[i] > top:
                top = o[i]
        total = 0.0
        for i in range(L):
            w[i] = math.exp(o[i] - top)
            total += w[i]
        target = uc[t] * total
        k = 0
        acc = w[0]
        while k < L - 1 and acc <= target:
            k += 1
            acc += w[k]
        ls = min(max(float(o[2 * L + k]), -14.0), 2.0)
        uu = min(max(uv[t], 1e-12), 1.0 - 1e-12)
        y = float(o[L + k]) + math.exp(ls) * (math.log(uu) - math.log1p(-uu))
        q = math.floor(y * 32768.0 + 0.5)
        q = min(max(q, -32768.0), 32767.0)
        x[P + t] = np.float32(q / 32768.0)


@_njit_par
def _run_many(xs, P, T, ts1, ts2, ts3, ts4, gain, in4, in3, in2, mlp_in, coded, uc, uv,
              w4x, w4ih, b4ih, w4hh, b4hh, w4up, b4up,
              w3x, w3ih, b3ih, w3hh, b3hh, w3up, b3up,
              w2x, w2ih, b2ih, w2hh, b2hh, w2up, b2up,
              mwx, mw2, mb2, mw3, mb3, mwo, mbo, params_out, keep_params, hs):
    for r in prange(xs.shape[0]):
        _run_one(xs[r], P, T, ts1, ts2, ts3, ts4, gain, in4, in3, in2, mlp_in, coded, uc[r], uv[r],
                 w4x, w4ih, b4ih, w4hh, b4hh, w4up, b4up,
                 w3x, w3ih, b3ih, w3hh, b3hh, w3up, b3up,
                 w2x, w2ih, b2ih, w2hh, b2hh, w2up, b2up,
                 mwx, mw2, mb2, mw3, mb3, mwo, mbo, params_out[r], keep_params, hs[r])


@_njit
def _run_serial(xs, P, T, ts1, ts2, ts3, ts4, gain, in4, in3, in2, mlp_in, coded, uc, uv,
              w4x, w4ih, b4ih, w4hh, b4hh, w4up, b4up,
              w3x, w3ih, b3ih, w3hh, b3hh, w3up, b3up,
              w2x, w2ih, b2ih, w2hh, b2hh, w2up, b2up,
              mwx, mw2, mb2, mw3, mb3, mwo, mbo, params_out, keep_params, hs):
    for r in range(xs.shape[0]):
        _run_one(xs[r], P, T, ts1, ts2, ts3, ts4, gain, in4, in3, in2, mlp_in, coded, uc[r], uv[r],
                 w4x, w4ih, b4ih, w4hh, b4hh, w4up, b4up,
                 w3x, w3ih, b3ih, w3hh, b3hh, w3up, b3up,
                 w2x, w2ih, b2ih, w2hh, b2hh, w2up, b2up,
                 mwx, mw2, mb2, mw3, mb3, mwo, mbo, params_out[r], keep_params, hs[r])


def set_threads(n: int) -> None:
    """Number of numba threads the realizations are spread over."""
    if HAVE_NUMBA:
        numba.set_num_threads(max(1, min(int(n), numba.config.NUMBA_NUM_THREADS)))


@dataclass
class GenState:
    """What generation carries from one segment to the next: the last ``TS(4)`` samples of every
    realization ``(R, P)`` and the GRU states of tiers 4, 3, 2 ``(R, 3, H)``."""

    history: np.ndarray
    hidden: np.ndarray

    @classmethod
    def zeros(cls, realizations: int, history: int, width: int) -> "GenState":
        return cls(np.zeros((realizations, history), np.float32), np.zeros((realizations, 3, width), np.float32))


def generate(weights: dict[str, np.ndarray], frame_sizes: tuple[int, int, int, int], gain: float,
             tier_inputs: list[np.ndarray], mlp_input: np.ndarray, coded: np.ndarray,
             uniforms: np.ndarray, keep_params: bool = False,
             state: GenState | None = None) -> tuple[np.ndarray, np.ndarray | None, GenState]:
    """Generate ``R = uniforms.shape[0]`` realizations of the next ``T`` samples.

    ``tier_inputs``: ``(frames, H)`` float32 per tier (4, 3, 2); ``mlp_input``: ``(T, Hm)``;
    ``coded``: ``(T,)``; ``uniforms``: ``(R, 2, T)`` float64 in (0, 1); ``state``: where the
    previous segment stopped (zeros: the start of a signal).  ``T`` must be a multiple of
    ``TS(4)``.  Returns ``(R, T)`` float32 samples on the 16-bit grid, with ``keep_params`` the
    mixture parameters ``(R, T, 3L)`` they were drawn from, and the state after the segment."""
    ts1, ts2, ts3, ts4 = (int(v) for v in frame_sizes)
    R, _, T = uniforms.shape
    if T % ts4:
        raise ValueError("a segment must hold whole TS(4) frames")
    P = ts4
    H = weights["t0_whh"].shape[1]
    state = state or GenState.zeros(R, P, H)
    L3 = weights["m_wo"].shape[0]
    xs = np.zeros((R, P + T), dtype=np.float32)
    xs[:, :P] = state.history
    hs = np.array(state.hidden, dtype=np.float32, copy=True)
    params = np.zeros((R, T if keep_params else 1, L3), dtype=np.float32)
    f32 = lambda a: np.ascontiguousarray(a, dtype=np.float32)  # noqa: E731
    w = {k: f32(v) for k, v in weights.items()}
    args = [f32(tier_inputs[0]), f32(tier_inputs[1]), f32(tier_inputs[2]), f32(mlp_input), f32(coded),
            np.ascontiguousarray(uniforms[:, 0], dtype=np.float64), np.ascontiguousarray(uniforms[:, 1], dtype=np.float64)]
    for i in range(3):
        args += [w[f"t{i}_wx"], w[f"t{i}_wih"], w[f"t{i}_bih"], w[f"t{i}_whh"], w[f"t{i}_bhh"],
                 w[f"t{i}_wup"], w[f"t{i}_bup"]]
    args += [w["m_wx"], w["m_w2"], w["m_b2"], w["m_w3"], w["m_b3"], w["m_wo"], w["m_bo"], params, bool(keep_params), hs]
    # one realization or one thread: no parallel region (its idle workers only burn CPU)
    serial = R == 1 or not HAVE_NUMBA or numba.get_num_threads() == 1
    (_run_serial if serial else _run_many)(xs, P, T, ts1, ts2, ts3, ts4, np.float32(gain), *args)
    return xs[:, P:], (params if keep_params else None), GenState(xs[:, T:].copy(), hs)
