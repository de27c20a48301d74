"""``neurocodec listen results``: BS.1534-3 post-screening, per-condition statistics, figure and CSV.

Post-screening (BS.1534-3 §4.1.2): a rater is excluded when, over the trials he or she
submitted, the hidden reference got a score below 90 in more than 15% of them.  Optionally
(``--anchor-screening``) also when the mid-range anchor (the 7 kHz low-pass) got a score above
90 in more than 15% of them; this rule is off by default because on wideband (16 kHz) material
the 7 kHz low-pass removes only the 7-8 kHz band and can honestly be near-transparent.

Statistics (BS.1534-3, statistical analysis): for each item group and condition, over the scores
of the kept raters, the mean ``m``, the sample standard deviation ``s`` and the 95% confidence
interval ``m +- t(0.975, n-1) s / sqrt(n)`` of Student's t distribution.
"""

from __future__ import annotations

import csv
import math
import os
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from scipy import stats

from .plan import DB_FILE, REFERENCE, Plan
from .store import Rating, read_ratings

MID_ANCHOR = "anchor-7k"
ALL = "all items"


@dataclass(frozen=True)
class Screening:
    rater: str
    trials: int
    reference_below_90: int
    anchor_above_90: int
    excluded: bool
    reason: str


@dataclass(frozen=True)
class ConditionStats:
    group: str
    condition: str
    label: str
    n: int
    mean: float
    std: float
    ci95: float  # half-width of the 95% Student-t interval (nan for n < 2)


def post_screen(ratings: Iterable[Rating], max_fraction: float = 0.15, reference: str = REFERENCE,
                mid_anchor: str | None = None) -> list[Screening]:
    """Apply the exclusion rules of the module docstring to every rater (the anchor rule only
    with ``mid_anchor``, e.g. :data:`MID_ANCHOR`)."""
    by_rater: dict[str, dict[int, dict[str, float]]] = defaultdict(lambda: defaultdict(dict))
    for r in ratings:
        by_rater[r.rater][r.trial][r.condition] = r.score
    out = []
    for rater in sorted(by_rater):
        trials = by_rater[rater]
        n = len(trials)
        ref_low = sum(1 for t in trials.values() if reference in t and t[reference] < 90)
        anc_high = sum(1 for t in trials.values() if mid_anchor and mid_anchor in t and t[mid_anchor] > 90)
        reasons = []
        if ref_low > max_fraction * n:
            reasons.append(f"hidden reference below 90 in {ref_low} of {n} trials")
        if anc_high > max_fraction * n:
            reasons.append(f"mid anchor above 90 in {anc_high} of {n} trials")
        out.append(Screening(rater, n, ref_low, anc_high, bool(reasons), "; ".join(reasons)))
    return out


def t_interval(scores: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """``(mean, std, half-width)`` of the Student-t confidence interval at ``level``."""
    x = np.asarray(scores, dtype=np.float64)
    n = x.size
    if n == 0:
        return math.nan, math.nan, math.nan
    m = float(x.mean())
    if n < 2:
        return m, math.nan, math.nan
    s = float(x.std(ddof=1))
    return m, s, float(stats.t.ppf(0.5 + level / 2, n - 1) * s / math.sqrt(n))


def condition_stats(plan: Plan, ratings: Iterable[Rating], keep: set[str] | None = None) -> list[ConditionStats]:
    """Statistics per (item group, condition) and over all items, in the plan's condition order."""
    groups = {i.id: i.group for i in plan.items}
    scores: dict[tuple[str, str], list[float]] = defaultdict(list)
    for r in ratings:
        if keep is not None and r.rater not in keep:
            continue
        scores[(groups[r.item], r.condition)].append(r.score)
        scores[(ALL, r.condition)].append(r.score)
    out = []
    group_names = sorted({i.group for i in plan.items})
    for g in group_names + ([ALL] if len(group_names) > 1 else []):
        for c in plan.conditions:
            vals = scores.get((g, c.id), [])
            m, s, h = t_interval(vals)
            out.append(ConditionStats(g, c.id, c.label, len(vals), m, s, h))
    return out


def write_csv(rows: Sequence[ConditionStats], path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(ConditionStats.__dataclass_fields__))
        w.writeheader()
        for r in rows:
            w.writerow({k: (round(v, 3) if isinstance(v, float) else v) for k, v in asdict(r).items()})
    return path


def figure(rows: Sequence[ConditionStats], path: str | os.PathLike, title: str = "") -> Path:
    """The papers' MUSHRA figure: conditions on the x axis, mean and 95% interval, one panel per group."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = list(dict.fromkeys(r.group for r in rows))
    fig, axes = plt.subplots(1, len(groups), figsize=(1.6 + 0.5 * len({r.condition for r in rows}) * len(groups), 3.6),
                             sharey=True, squeeze=False)
    for ax, g in zip(axes[0], groups):
        sub = [r for r in rows if r.group == g]
        x = np.arange(len(sub))
        means = np.array([r.mean for r in sub])
        err = np.array([0.0 if math.isnan(r.ci95) else r.ci95 for r in sub])
        for lo in (20, 40, 60, 80):
            ax.axhline(lo, color="0.85", lw=0.8, zorder=0)
        ax.errorbar(x, means, yerr=err, fmt="o", color="C0", ecolor="C0", capsize=4, ms=5)
        ax.set_xticks(x, [r.label for r in sub], rotation=45, ha="right", fontsize=8)
        n = max((r.n for r in sub), default=0)
        ax.set_title(f"{g} ({n} scores per condition)", fontsize=9)
        ax.set_ylim(-2, 102)
        ax.set_xlim(-0.6, len(sub) - 0.4)
        ax.set_yticks(range(0, 101, 20))
        ax.tick_params(axis="y", labelsize=8)
    axes[0][0].set_ylabel("MUSHRA score (mean, 95% CI)")
    grades = axes[0][-1].twinx()
    grades.set_ylim(-2, 102)
    grades.set_yticks([10, 30, 50, 70, 90], ["Bad", "Poor", "Fair", "Good", "Excellent"], fontsize=8)
    grades.tick_params(axis="y", length=0)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def markdown(rows: Sequence[ConditionStats], screening: Sequence[Screening]) -> str:
    """The statistics as a Markdown table, then who post-screening kept and excluded."""
    lines = ["| group | condition | n | mean | 95% CI |", "|---|---|---|---|---|"]
    for r in rows:
        ci = "–" if math.isnan(r.ci95) else f"±{r.ci95:.1f}"
        mean = "–" if math.isnan(r.mean) else f"{r.mean:.1f}"
        lines.append(f"| {r.group} | {r.label} | {r.n} | {mean} | {ci} |")
    kept = [s for s in screening if not s.excluded]
    lines += ["", f"{len(kept)} of {len(screening)} raters kept after BS.1534-3 post-screening"
              + (":" if len(kept) < len(screening) else ".")]
    if len(kept) < len(screening):
        lines.append("")
    for s in screening:
        if s.excluded:
            lines.append(f"- excluded {s.rater}: {s.reason}")
    return "\n".join(lines) + "\n"


@dataclass
class Results:
    screening: list[Screening]
    stats: list[ConditionStats]
    csv: Path
    figure: Path
    table: str


def analyse(folder: str | os.PathLike, out: str | os.PathLike | None = None, figure_path: str | os.PathLike | None = None,
            screen: bool = True, anchor_screening: bool = False) -> Results:
    """Read a test folder's ratings and write ``results.csv``, ``screening.csv`` and ``results.png``."""
    from ..errors import UserError

    folder = Path(folder)
    plan = Plan.load(folder)
    ratings = read_ratings(folder / DB_FILE)
    if not ratings:
        raise UserError(f"{folder} has no ratings yet")
    screening = post_screen(ratings, mid_anchor=MID_ANCHOR if anchor_screening else None)
    keep = {s.rater for s in screening if not s.excluded or not screen}
    if not keep:
        raise UserError("post-screening excluded every rater (use --no-screening to see their scores)")
    rows = condition_stats(plan, ratings, keep)
    out = Path(out) if out else folder / "results"
    csv_path = write_csv(rows, out / "results.csv")
    with open(out / "screening.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(Screening.__dataclass_fields__))
        w.writeheader()
        for s in screening:
            w.writerow(asdict(s))
    fig = figure(rows, figure_path or out / "results.png", title=f"{plan.title}: {len(keep)} raters")
    table = markdown(rows, screening if screen else [s.__class__(**{**asdict(s), "excluded": False}) for s in screening])
    (out / "results.md").write_text(table)
    return Results(screening, rows, csv_path, fig, table)
