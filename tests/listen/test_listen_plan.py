"""The plan: Williams squares, seeded and balanced per-rater orders, JSON round trip."""

from collections import Counter
from itertools import permutations

import pytest

from neurocodec.listen.plan import Plan, PlanError, balanced_orders, williams_square


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 6, 7])
def test_williams_square_is_latin_and_carryover_balanced(n):
    rows = williams_square(n)
    assert len(rows) == (2 * n if n % 2 and n > 1 else n)
    for row in rows:
        assert sorted(row) == list(range(n))
    for col in range(n):  # each symbol equally often in each column
        counts = Counter(row[col] for row in rows)
        assert set(counts) == set(range(n)) and len(set(counts.values())) == 1
    if n > 1:  # each ordered pair (a directly before b) equally often
        pairs = Counter((row[i], row[i + 1]) for row in rows for i in range(n - 1))
        assert set(pairs) == set(permutations(range(n), 2))
        assert len(set(pairs.values())) == 1


ITEMS = [f"i{k:02d}" for k in range(4)]
CONDS = ["reference", "mdct-16k", "opus-16k", "amrwb-15.85k", "anchor-3.5k", "anchor-7k"]


def test_orders_are_seeded():
    a = balanced_orders(12, ITEMS, CONDS, seed=5)
    assert a == balanced_orders(12, ITEMS, CONDS, seed=5)
    assert a != balanced_orders(12, ITEMS, CONDS, seed=6)
    assert [r.id for r in a] == [f"r{k:02d}" for k in range(1, 13)]


def test_every_trial_shows_every_condition_once_and_every_item_once_per_rater():
    for r in balanced_orders(7, ITEMS, CONDS, seed=0):
        assert sorted(t.item for t in r.trials) == ITEMS
        for t in r.trials:
            assert sorted(t.order) == sorted(CONDS)


def test_orders_are_balanced_over_a_block_of_raters():
    # 4 items (even): 4 trial-order rows; 6 conditions (even): 6 letter rows -> block of 12 raters
    raters = balanced_orders(12, ITEMS, CONDS, seed=11)
    positions = Counter((t.item, pos) for r in raters for pos, t in enumerate(r.trials))
    assert set(positions.values()) == {3}  # each item at each trial position 12/4 times
    for item in ITEMS:
        letters = Counter((c, slot) for r in raters for t in r.trials if t.item == item for slot, c in enumerate(t.order))
        assert len(letters) == len(CONDS) ** 2 and set(letters.values()) == {2}  # 12/6 times each
    # and the orders differ between raters (randomized, not one fixed order)
    assert len({tuple(t.order for t in r.trials) for r in raters}) == 12


def test_odd_counts_balance_over_twice_the_block():
    items, conds = ITEMS[:3], CONDS[:5]
    raters = balanced_orders(30, items, conds, seed=2)  # 2*3=6 and 2*5=10 rows -> 30
    positions = Counter((t.item, pos) for r in raters for pos, t in enumerate(r.trials))
    assert set(positions.values()) == {10}
    letters = Counter((c, slot) for r in raters for t in r.trials if t.item == "i00" for slot, c in enumerate(t.order))
    assert set(letters.values()) == {6}


def test_plan_json_round_trip(tmp_path):
    from neurocodec.listen.plan import Condition, Item

    plan = Plan("t", 3, [Item("i00", "a.wav", "all", 16000, 1, 16000)], [Condition("reference", "reference", "Ref")],
                balanced_orders(2, ["i00"], ["reference"], 3), {"i00": {"reference": {"file": "audio/i00/reference.wav"}}})
    plan.save(tmp_path)
    back = Plan.load(tmp_path)
    assert back.to_json() == plan.to_json()
    assert back.item("i00").duration_s == 1.0


def test_plan_load_errors(tmp_path):
    with pytest.raises(PlanError, match="not found"):
        Plan.load(tmp_path / "nope")
    with pytest.raises(PlanError, match="no plan.json"):
        Plan.load(tmp_path)
    (tmp_path / "plan.json").write_text("{")
    with pytest.raises(PlanError, match="not valid JSON"):
        Plan.load(tmp_path)
    (tmp_path / "plan.json").write_text('{"format": "other"}')
    with pytest.raises(PlanError, match="not a listening-test plan"):
        Plan.load(tmp_path)


def test_no_raters_is_an_error():
    from neurocodec.errors import UserError

    with pytest.raises(UserError):
        balanced_orders(0, ITEMS, CONDS, 0)
