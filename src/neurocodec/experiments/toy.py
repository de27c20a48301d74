"""The toy example of fejgin2020 §2.2 (Table 1): random sines, a scalar quantiser, and the
ideal "generative" decoder that samples from p(x | y).

Source: ``x[k] = cos(pi (z1 k + 2 z2))``, ``k = 1..d``, ``z1, z2 ~ U[0, 1]`` i.i.d., ``d = 10``.
Codec: ``y = round(x / delta)`` per sample; the midpoint decoder outputs ``delta * y``.  The
sampling decoder outputs a draw from ``p(x | y)`` (the source restricted to the quantiser cell
``Omega_y``), and the third decoder the mean of ``R = 10`` such draws.  Per-sample MSEs over
10000 trials are Table 1 of the paper (Δ=0.5: 0.026 / 0.011 / 0.0056; Δ=1: 0.11 / 0.068 /
0.038).  By eq. (2)-(3) the sampling MSE is twice the MMSE and the mean of R draws gives
``(1 + 1/R)`` times the MMSE.

Sampling p(x | y) exactly and fast.  The paper draws random sines until one quantises to y
("drawing random vector samples of x until x in Omega_y"); the expected number of draws is
``1 / P(Omega_y)``, which is hopeless for Δ = 0.5 (see ``naive_draws_per_sample`` in the
output).  Since ``x`` is a deterministic function of ``z = (z1, z2)``, p(x | y) is the image of
the uniform distribution on ``R_y = {z in [0,1]^2 : round(x(z)/delta) = y}``.  We cover R_y by
a quadtree: a square cell of the z-plane is discarded when, for some k, the exact range of
``cos(pi a)`` over the cell (``a = z1 k + 2 z2`` is linear, so it spans an interval; the range
of cos over an interval follows from its end points and the integers inside it) misses the
quantiser interval of ``y[k]``.  Discarding is conservative (ranges are widened by 1e-9), so
the kept cells contain R_y.  We then run the paper's rejection sampler with the proposal
"uniform on the kept cells" instead of "uniform on the unit square": accept a candidate iff it
quantises to y.  A uniform proposal restricted to a superset of R_y, conditioned on landing
in R_y, is uniform on R_y, so accepted draws have exactly the law of the naive sampler's
accepted draws, only with far fewer rejections.  ``naive_rejection`` implements the paper's
sampler literally; the tests compare the two.

Reported "sampling" MSE averages over all R draws of each trial (same expectation as using one
draw, lower variance); "mean of R" uses the average of the same R draws.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from ..errors import UserError

__all__ = [
    "ToyConfigError", "ToyRow", "ToyResult", "PAPER_TABLE1", "sine_source", "quantize",
    "naive_rejection", "sample_posterior", "PosteriorSamples", "run_toy", "format_table",
    "add_arguments", "run_from_args", "main",
]

#: fejgin2020 Table 1: delta -> (midpoint, sampling, mean of 10 realizations)
PAPER_TABLE1: dict[float, tuple[float, float, float]] = {
    0.5: (0.026, 0.011, 0.0056),
    1.0: (0.11, 0.068, 0.038),
}

_EPS = 1e-9  # widening of cos ranges so that float rounding never discards a valid cell


class ToyConfigError(UserError):
    """Invalid parameters for the toy experiment."""


def sine_source(z1: np.ndarray, z2: np.ndarray, d: int = 10) -> np.ndarray:
    """``x[..., k-1] = cos(pi (z1 k + 2 z2))`` for ``k = 1..d`` (fejgin2020 §2.2)."""
    k = np.arange(1, d + 1, dtype=np.float64)
    z1 = np.asarray(z1, dtype=np.float64)[..., None]
    z2 = np.asarray(z2, dtype=np.float64)[..., None]
    return np.cos(np.pi * (z1 * k + 2.0 * z2))


#: quantiser kinds: offset ``s`` with index ``m = floor(x / delta + s)``, cell
#: ``[delta (m - s), delta (m - s + 1))`` and midpoint reconstruction ``delta (m - s + 1/2)``
QUANTIZERS = {"midrise": 0.0, "midtread": 0.5}


def _offset(quantizer: str) -> float:
    try:
        return QUANTIZERS[quantizer]
    except KeyError:
        raise ToyConfigError(f"unknown quantizer '{quantizer}' (choose midrise or midtread)") from None


def quantize(x: np.ndarray, delta: float, quantizer: str = "midrise") -> np.ndarray:
    """Quantiser indices ``m = floor(x / delta + s)`` (int64); see :data:`QUANTIZERS`.

    ``midtread`` is the text's ``round(x / delta)`` (levels ``delta * m``, one at zero);
    ``midrise`` has cells ``[m delta, (m+1) delta)`` with levels at their midpoints.
    """
    return np.floor(np.asarray(x) / delta + _offset(quantizer)).astype(np.int64)


def reconstruct(y: np.ndarray, delta: float, quantizer: str = "midrise") -> np.ndarray:
    """Midpoint reconstruction ``delta (m - s + 1/2)`` of quantiser indices."""
    return delta * (np.asarray(y, dtype=np.float64) - _offset(quantizer) + 0.5)


def naive_rejection(y: np.ndarray, delta: float, n: int, rng: np.random.Generator,
                    quantizer: str = "midrise", batch: int = 1 << 16, max_draws: int = 10 ** 8) -> tuple[np.ndarray, int]:
    """The paper's sampler: draw random sines until ``n`` quantise to ``y``.

    Returns ``(samples (n, d), number of draws)``; raises RuntimeError after ``max_draws``.
    """
    y = np.asarray(y, dtype=np.int64)
    d = y.size
    out: list[np.ndarray] = []
    got = draws = 0
    while got < n:
        if draws >= max_draws:
            raise RuntimeError(f"naive rejection needed more than {max_draws} draws")
        x = sine_source(rng.random(batch), rng.random(batch), d)
        hit = np.flatnonzero(np.all(quantize(x, delta, quantizer) == y, axis=1))[: n - got]
        # draws used: the whole batch, or up to the last hit we needed
        draws += batch if got + hit.size < n else int(hit[-1]) + 1
        out.append(x[hit])
        got += hit.size
    return np.concatenate(out)[:n], draws


def _cos_range(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact min and max of ``cos(pi a)`` over ``a in [lo, hi]`` (elementwise)."""
    c_lo, c_hi = np.cos(np.pi * lo), np.cos(np.pi * hi)
    cmin, cmax = np.minimum(c_lo, c_hi), np.maximum(c_lo, c_hi)
    has_even = 2.0 * np.floor(hi / 2.0) >= lo  # cos = +1 at even integers
    has_odd = 2.0 * np.floor((hi - 1.0) / 2.0) + 1.0 >= lo  # cos = -1 at odd integers
    cmax = np.where(has_even, 1.0, cmax)
    cmin = np.where(has_odd, -1.0, cmin)
    return cmin, cmax


def _classify(ti, i, j, lev, qlo, qhi, k):
    """For cells ``[i, i+1] x [j, j+1] * 2**-lev`` of trial ``ti``: (may intersect R_y, inside R_y)."""
    h = np.exp2(-lev.astype(np.float64))[:, None]
    fi, fj = i.astype(np.float64)[:, None], j.astype(np.float64)[:, None]
    lo = h * (fi * k + 2.0 * fj)
    hi = h * ((fi + 1.0) * k + 2.0 * (fj + 1.0))
    cmin, cmax = _cos_range(lo, hi)
    a, b = qlo[ti], qhi[ti]
    maybe = np.all((cmax + _EPS >= a) & (cmin - _EPS <= b), axis=1)
    inside = np.all((cmin - _EPS > a) & (cmax + _EPS < b), axis=1)
    return maybe, inside & maybe


@dataclass
class PosteriorSamples:
    """Draws from p(x | y) for a batch of trials, with sampler statistics."""

    samples: np.ndarray  # (trials, realizations, d)
    cell_probability: np.ndarray  # (trials,) estimate of P(Omega_y) = naive acceptance rate
    candidates: int  # proposals drawn in total
    accepted: int  # proposals accepted in total (>= trials * realizations)


def sample_posterior(y: np.ndarray, delta: float, realizations: int, rng: np.random.Generator,
                     quantizer: str = "midrise", max_depth: int = 18, target_inside: float = 0.5,
                     max_cells_per_trial: int = 256,
                     max_candidates_per_trial: int = 10 ** 8) -> PosteriorSamples:
    """Exact draws from ``p(x | y)`` for each row of ``y`` (quadtree-restricted rejection).

    The unit square of ``(z1, z2)`` is refined level by level; cells that cannot reach
    ``Omega_y`` are dropped (see the module docstring).  A trial stops refining once its
    cells known to lie inside R_y make up ``target_inside`` of its kept area, or at
    ``max_depth`` or ``max_cells_per_trial``.  Candidates are then drawn uniformly from the
    kept cells (area-weighted, in exact integer arithmetic) and accepted iff they quantise to
    ``y``; the first ``realizations`` accepted candidates of each trial are returned.
    RuntimeError after ``max_candidates_per_trial`` candidates for one trial (only a y whose
    cell has probability ~0, e.g. from a sine hitting cell boundaries exactly, gets there).
    """
    y = np.atleast_2d(np.asarray(y, dtype=np.int64))
    t_count, d = y.shape
    k = np.arange(1, d + 1, dtype=np.float64)[None, :]
    qlo = delta * (y - _offset(quantizer))
    qhi = qlo + delta
    unit = 2 * max_depth  # areas in units of 4**-max_depth = 2**-unit

    # --- quadtree cover of R_y for every trial ------------------------------------------
    ti = np.arange(t_count)
    ci = np.zeros(t_count, dtype=np.int64)
    cj = np.zeros(t_count, dtype=np.int64)
    lev = np.zeros(t_count, dtype=np.int64)
    final: list[tuple[np.ndarray, ...]] = []
    maybe, inside = _classify(ti, ci, cj, lev, qlo, qhi, k)
    if not maybe.all():
        raise ValueError("some y is not a possible quantised sine")
    for depth in range(max_depth + 1):
        area = np.int64(1) << (unit - 2 * lev)
        in_area = np.bincount(ti, weights=np.where(inside, area, 0), minlength=t_count)
        all_area = np.bincount(ti, weights=area, minlength=t_count)
        n_cells = np.bincount(ti, minlength=t_count)
        done = (in_area >= target_inside * all_area) | (n_cells * 4 > max_cells_per_trial)
        if depth == max_depth:
            done[:] = True
        stop = done[ti] | inside
        if stop.any():
            final.append((ti[stop], ci[stop], cj[stop], lev[stop]))
        go = ~stop
        if not go.any():
            break
        ti, ci, cj, lev = ti[go], ci[go], cj[go], lev[go]
        ti = np.repeat(ti, 4)
        ci = 2 * np.repeat(ci, 4) + np.tile([0, 0, 1, 1], go.sum())
        cj = 2 * np.repeat(cj, 4) + np.tile([0, 1, 0, 1], go.sum())
        lev = np.repeat(lev, 4) + 1
        maybe, inside = _classify(ti, ci, cj, lev, qlo, qhi, k)
        ti, ci, cj, lev, inside = ti[maybe], ci[maybe], cj[maybe], lev[maybe], inside[maybe]

    ti, ci, cj, lev = (np.concatenate(a) for a in zip(*final))
    order = np.argsort(ti, kind="stable")
    ti, ci, cj, lev = ti[order], ci[order], cj[order], lev[order]
    area = np.int64(1) << (unit - 2 * lev)
    cum = np.cumsum(area)
    total = np.bincount(ti, weights=area, minlength=t_count).astype(np.int64)
    base = np.concatenate([[0], np.cumsum(total)[:-1]])
    kept_area = total / float(1 << unit)

    # --- rejection sampling from the cover ----------------------------------------------
    samples = np.empty((t_count, realizations, d))
    have = np.zeros(t_count, dtype=np.int64)
    drawn = np.zeros(t_count, dtype=np.int64)
    hits = np.zeros(t_count, dtype=np.int64)
    while True:
        need = realizations - have
        pending = np.flatnonzero(need > 0)
        if pending.size == 0:
            break
        if drawn[pending].max() > max_candidates_per_trial:
            raise RuntimeError("a code vector has (almost) zero probability; no sample found after "
                               f"{max_candidates_per_trial} candidates")
        rate = np.where(drawn[pending] > 0, (hits[pending] + 1) / (drawn[pending] + 2), 0.5)
        m = np.ceil(need[pending] / np.maximum(rate, 1e-3) * 1.3).astype(np.int64) + 2
        m = np.minimum(m, 1 << 16)
        tt = np.repeat(pending, m)
        r = rng.integers(0, total[tt])
        cell = np.searchsorted(cum, base[tt] + r, side="right")
        h = np.exp2(-lev[cell].astype(np.float64))
        z1 = (ci[cell] + rng.random(tt.size)) * h
        z2 = (cj[cell] + rng.random(tt.size)) * h
        x = sine_source(z1, z2, d)
        ok = np.all(quantize(x, delta, quantizer) == y[tt], axis=1)
        drawn += np.bincount(tt, minlength=t_count)
        hits += np.bincount(tt[ok], minlength=t_count)
        acc_t = tt[ok]
        acc_x = x[ok]
        # rank of each accepted candidate within its trial (candidates are grouped by trial)
        first = np.searchsorted(acc_t, acc_t, side="left")
        rank = np.arange(acc_t.size) - first + have[acc_t]
        use = rank < realizations
        samples[acc_t[use], rank[use]] = acc_x[use]
        have += np.bincount(acc_t[use], minlength=t_count)
    return PosteriorSamples(samples=samples, cell_probability=kept_area * hits / drawn,
                            candidates=int(drawn.sum()), accepted=int(hits.sum()))


@dataclass
class ToyRow:
    """Measured per-sample MSEs for one step size, with the paper's values."""

    delta: float
    trials: int
    midpoint: float
    sampling: float
    mean_of_realizations: float
    midpoint_stderr: float
    sampling_stderr: float
    mean_stderr: float
    paper: tuple[float, float, float] | None
    naive_acceptance: float  # mean over trials of P(Omega_y): the paper sampler's acceptance rate
    naive_draws_per_sample: float  # mean over trials of 1 / P(Omega_y)
    proposal_acceptance: float  # acceptance rate of the quadtree-restricted proposal
    seconds: float

    def deviations(self) -> tuple[float, float, float] | None:
        """Relative deviation (measured / paper - 1) of the three columns."""
        if self.paper is None:
            return None
        got = (self.midpoint, self.sampling, self.mean_of_realizations)
        return tuple(g / p - 1.0 for g, p in zip(got, self.paper))


@dataclass
class ToyResult:
    """Table 1 of fejgin2020, reproduced."""

    rows: list[ToyRow]
    d: int
    realizations: int
    seed: int
    quantizer: str
    seconds: float
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def _run_delta(delta: float, trials: int, d: int, realizations: int, rng: np.random.Generator,
               quantizer: str, progress: bool, block: int) -> ToyRow:
    from tqdm import tqdm

    t0 = time.perf_counter()
    se_mid, se_samp, se_mean = [], [], []
    p_cells, cand, acc = [], 0, 0
    with tqdm(total=trials, desc=f"toy delta={delta:g}", unit="trial", disable=not progress,
              leave=False) as bar:
        done = 0
        while done < trials:
            n = min(block, trials - done)
            x = sine_source(rng.random(n), rng.random(n), d)
            y = quantize(x, delta, quantizer)
            post = sample_posterior(y, delta, realizations, rng, quantizer)
            se_mid.append(np.mean((reconstruct(y, delta, quantizer) - x) ** 2, axis=1))
            err = post.samples - x[:, None, :]
            se_samp.append(np.mean(err ** 2, axis=(1, 2)))
            se_mean.append(np.mean((post.samples.mean(axis=1) - x) ** 2, axis=1))
            p_cells.append(post.cell_probability)
            cand += post.candidates
            acc += post.accepted
            done += n
            bar.update(n)
    mid, samp, mean = (np.concatenate(a) for a in (se_mid, se_samp, se_mean))
    p = np.concatenate(p_cells)
    paper = PAPER_TABLE1.get(float(delta))
    if realizations != 10:
        paper = (paper[0], paper[1], float("nan")) if paper else None
    return ToyRow(
        delta=float(delta), trials=trials,
        midpoint=float(mid.mean()), sampling=float(samp.mean()), mean_of_realizations=float(mean.mean()),
        midpoint_stderr=float(mid.std(ddof=1) / np.sqrt(trials)) if trials > 1 else float("nan"),
        sampling_stderr=float(samp.std(ddof=1) / np.sqrt(trials)) if trials > 1 else float("nan"),
        mean_stderr=float(mean.std(ddof=1) / np.sqrt(trials)) if trials > 1 else float("nan"),
        paper=paper,
        naive_acceptance=float(p.mean()), naive_draws_per_sample=float(np.mean(1.0 / p)),
        proposal_acceptance=acc / cand, seconds=time.perf_counter() - t0,
    )


def run_toy(deltas=(0.5, 1.0), trials: int = 10000, d: int = 10, realizations: int = 10,
            seed: int = 0, progress: bool = True, quantizer: str = "midrise",
            block: int = 500) -> ToyResult:
    """Reproduce fejgin2020 Table 1: per-sample MSE of the midpoint decoder, of one draw from
    p(x | y), and of the mean of ``realizations`` draws, for each step size in ``deltas``.

    ``quantizer="midrise"`` (default) reproduces the Table; ``"midtread"`` is the text's
    ``delta * round(x / delta)`` (see the module docstring)."""
    _offset(quantizer)
    deltas = [float(v) for v in deltas]
    if not deltas or any(not np.isfinite(v) or v <= 0 for v in deltas):
        raise ToyConfigError(f"step sizes must be positive, got {deltas}")
    if int(trials) < 1 or int(d) < 1 or int(realizations) < 1:
        raise ToyConfigError("trials, d and realizations must be at least 1")
    t0 = time.perf_counter()
    seqs = np.random.SeedSequence(int(seed)).spawn(len(deltas))
    rows = [_run_delta(v, int(trials), int(d), int(realizations), np.random.default_rng(s),
                       quantizer, progress, int(block)) for v, s in zip(deltas, seqs)]
    notes = ["sampling = mean squared error of single draws from p(x|y) (all draws averaged)",
             "sampler: quadtree-restricted rejection, exactly equivalent to the paper's rejection"]
    return ToyResult(rows=rows, d=int(d), realizations=int(realizations), seed=int(seed),
                     quantizer=quantizer, seconds=time.perf_counter() - t0, notes=notes)


def format_table(result: ToyResult) -> str:
    """Measured values next to fejgin2020 Table 1 with relative deviations."""
    r = result.realizations
    head = f"{'delta':>6} | {'Midpoint':^26} | {'Sampling':^26} | {f'Mean of {r} realizations':^26}"
    sub = f"{'':>6} | " + " | ".join([f"{'measured':>10} {'paper':>7} {'dev':>6}"] * 3)
    lines = [f"fejgin2020 Table 1: per-sample MSE (d={result.d}, {result.quantizer} quantizer, "
             f"seed={result.seed})", head, sub,
             "-" * len(head)]
    for row in result.rows:
        got = (row.midpoint, row.sampling, row.mean_of_realizations)
        paper = row.paper or (float("nan"),) * 3
        cells = []
        for g, p in zip(got, paper):
            dev = f"{100 * (g / p - 1):+5.0f}%" if np.isfinite(p) else "     -"
            ps = f"{p:7.4g}" if np.isfinite(p) else "      -"
            cells.append(f"{g:10.4g} {ps} {dev}")
        lines.append(f"{row.delta:6g} | " + " | ".join(cells))
    lines.append("")
    for row in result.rows:
        lines.append(
            f"delta={row.delta:g}: {row.trials} trials in {row.seconds:.1f} s; stderr "
            f"{row.midpoint_stderr:.2g}/{row.sampling_stderr:.2g}/{row.mean_stderr:.2g}; "
            f"naive rejection acceptance {row.naive_acceptance:.3g} "
            f"(mean {row.naive_draws_per_sample:.3g} draws per sample), "
            f"quadtree proposal acceptance {row.proposal_acceptance:.2f}")
    lines.append(f"total {result.seconds:.1f} s")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the toy experiment (shared by ``python -m`` and the CLI)."""
    parser.add_argument("--trials", type=int, default=10000, help="trials per step size (default 10000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--deltas", type=float, nargs="+", default=[0.5, 1.0],
                        help="quantiser step sizes (default 0.5 1)")
    parser.add_argument("--dim", type=int, default=10, help="samples per sine, d (default 10)")
    parser.add_argument("--realizations", type=int, default=10,
                        help="draws averaged by the mean decoder (default 10)")
    parser.add_argument("--quantizer", choices=sorted(QUANTIZERS), default="midrise",
                        help="midrise reproduces Table 1 (default); midtread is delta*round(x/delta)")
    parser.add_argument("--json", metavar="PATH", help="also write the result as JSON ('-' = stdout)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run_from_args(args: argparse.Namespace) -> int:
    """Run with parsed options, print the table (and JSON); return the exit status."""
    result = run_toy(deltas=args.deltas, trials=args.trials, d=args.dim,
                     realizations=args.realizations, seed=args.seed, progress=not args.no_progress,
                     quantizer=args.quantizer)
    print(format_table(result))
    if args.json:
        text = json.dumps(result.to_dict(), indent=2)
        if args.json == "-":
            print(text)
        else:
            from ..audio import atomic_write_bytes

            atomic_write_bytes(args.json, (text + "\n").encode())
    return 0


def main(argv=None) -> int:
    """``python -m neurocodec.experiments.toy``: reproduce fejgin2020 Table 1."""
    parser = argparse.ArgumentParser(prog="python -m neurocodec.experiments.toy",
                                     description="Reproduce the toy example of fejgin2020 §2.2 (Table 1).")
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run_from_args(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
