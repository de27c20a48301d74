"""``listen results``: BS.1534-3 post-screening and Student-t statistics on constructed ratings."""

import csv
import math

import numpy as np
import pytest

from neurocodec.cli import main
from neurocodec.listen.plan import Plan
from neurocodec.listen.results import ALL, analyse, condition_stats, post_screen, t_interval
from neurocodec.listen.store import Rating, Store


def ratings_of(rater, ref_scores, anchor_scores=None, codec=50.0):
    out = []
    for k, ref in enumerate(ref_scores):
        out.append(Rating(rater, k, f"i{k:02d}", "reference", "A", ref))
        out.append(Rating(rater, k, f"i{k:02d}", "mdct-16k", "B", codec))
        if anchor_scores is not None:
            out.append(Rating(rater, k, f"i{k:02d}", "anchor-7k", "C", anchor_scores[k]))
    return out


def test_post_screening_rules():
    rs = (ratings_of("good", [100] * 19 + [80])            # 1 of 20 = 5%: kept
          + ratings_of("edge", [100] * 17 + [89, 85, 0])    # 3 of 20 = 15%: not more than 15%: kept
          + ratings_of("bad", [100] * 16 + [89, 85, 0, 70])  # 4 of 20 = 20%: excluded
          + ratings_of("ref90", [90] * 20)                  # exactly 90 is not below 90: kept
          + ratings_of("anchor", [100] * 20, [95] * 4 + [50] * 16))  # mid anchor above 90 in 20%: excluded
    s = {x.rater: x for x in post_screen(rs, mid_anchor="anchor-7k")}
    assert not s["good"].excluded and s["good"].reference_below_90 == 1
    assert not s["edge"].excluded and s["edge"].reference_below_90 == 3
    assert s["bad"].excluded and s["bad"].reason == "hidden reference below 90 in 4 of 20 trials"
    assert not s["ref90"].excluded
    assert s["anchor"].excluded and "mid anchor above 90 in 4 of 20" in s["anchor"].reason
    assert not post_screen(ratings_of("anchor", [100] * 20, [95] * 4 + [50] * 16))[0].excluded  # rule off by default


def test_t_interval_known_values():
    m, s, h = t_interval([1, 2, 3, 4, 5])
    assert m == 3 and s == pytest.approx(math.sqrt(2.5))
    assert h == pytest.approx(2.776445105 * math.sqrt(2.5) / math.sqrt(5), rel=1e-8)  # t(0.975, 4)
    m, s, h = t_interval([70.0])
    assert m == 70 and math.isnan(s) and math.isnan(h)
    assert math.isnan(t_interval([])[0])


def test_condition_stats_groups_and_kept_raters(tiny_test_template):
    plan = Plan.load(tiny_test_template)
    groups = {i.id: i.group for i in plan.items}
    rng = np.random.default_rng(0)
    rs, truth = [], {}
    for r in range(6):
        for k, item in enumerate(plan.items):
            for c in plan.conditions:
                v = float(rng.integers(0, 101))
                rs.append(Rating(f"r{r}", k, item.id, c.id, "A", v))
                truth.setdefault((groups[item.id], c.id), []).append(v)
                truth.setdefault((ALL, c.id), []).append(v)
    rs.append(Rating("outcast", 0, plan.items[0].id, "reference", "A", 0.0))
    rows = condition_stats(plan, rs, keep={f"r{r}" for r in range(6)})
    assert [r.group for r in rows] == ["music"] * 5 + ["speech"] * 5 + [ALL] * 5
    assert [r.condition for r in rows[:5]] == [c.id for c in plan.conditions]
    for row in rows:
        vals = truth[(row.group, row.condition)]
        assert row.n == len(vals) and row.mean == pytest.approx(np.mean(vals))
        assert row.ci95 == pytest.approx(t_interval(vals)[2])


def test_results_from_stored_ratings(fresh_test, capsys):
    plan = Plan.load(fresh_test)
    store = Store(fresh_test / "ratings.sqlite")
    for r, rp in enumerate(plan.raters):
        for k, t in enumerate(rp.trials):
            nonce = store.nonce(rp.id, k)
            scores = {c: ("ABCDE"[i], 100.0 if c == "reference" and r != 3 else 20.0 + 10 * i) for i, c in enumerate(t.order)}
            store.submit(rp.id, k, nonce, t.item, scores)
    store.close()
    assert main(["listen", "results", str(fresh_test)]) == 0
    out = capsys.readouterr().out
    assert "3 of 4 raters kept" in out and "- excluded r04: hidden reference below 90 in 2 of 2 trials" in out
    assert "| all items | Hidden reference | 6 | 100.0 | ±0.0 |" in out
    with open(fresh_test / "results" / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 15 and rows[0]["condition"] == "reference"
    png = (fresh_test / "results" / "results.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    res = analyse(fresh_test, screen=False)
    assert sum(1 for s in res.screening if s.excluded) == 1
    assert next(r for r in res.stats if r.group == ALL and r.condition == "reference").n == 8
