"""Split assignment by group and seeded generators."""

from __future__ import annotations

import pytest

from neurocodec.data.splits import assign_groups, check_fractions, item_rng, stable_hash
from neurocodec.errors import UserError


def test_every_group_gets_exactly_one_split_in_expected_proportions():
    groups = [f"spk{i}" for i in range(200)]
    out = assign_groups(groups, valid=0.1, test=0.05)
    assert set(out) == set(groups)
    counts = {s: sum(1 for v in out.values() if v == s) for s in ("train", "valid", "test")}
    assert counts == {"train": 170, "valid": 20, "test": 10}


def test_assignment_ignores_input_order_and_duplicates():
    groups = [f"g{i}" for i in range(50)]
    a = assign_groups(groups, 0.1, 0.1)
    b = assign_groups(list(reversed(groups)) + groups[:5], 0.1, 0.1)
    assert a == b


def test_small_sets_still_hold_out_one_group_each():
    out = assign_groups(["a", "b", "c"], 0.05, 0.05)
    assert sorted(out.values()) == ["test", "train", "valid"]
    assert set(assign_groups(["a", "b"], 0.1, 0.1).values()) == {"train"}
    assert assign_groups(["solo"], 0.4, 0.4) == {"solo": "train"}


def test_salt_changes_which_groups_are_held_out():
    groups = [f"g{i}" for i in range(100)]
    a = assign_groups(groups, 0.1, 0.1, salt="x")
    b = assign_groups(groups, 0.1, 0.1, salt="y")
    assert a != b


@pytest.mark.parametrize("valid,test", [(-0.1, 0.1), (0.1, 1.0), (0.5, 0.5)])
def test_bad_fractions_are_user_errors(valid, test):
    with pytest.raises(UserError):
        check_fractions(valid, test)


def test_item_rng_is_reproducible_and_keyed():
    assert item_rng(3, "a", 1).random() == item_rng(3, "a", 1).random()
    assert item_rng(3, "a", 1).random() != item_rng(3, "a", 2).random()
    assert item_rng(3, "a").random() != item_rng(4, "a").random()
    assert stable_hash("x", 1) == stable_hash("x", 1) != stable_hash("x", 2)
