"""Leak-free train/valid/test assignment by group (speaker or piece), and seeded RNGs.

Splits are decided per *group* - a speaker, a piece, or a set of ids known to be the
same person (e.g. the CMU ARCTIC "slt" voice in flite and in festival) - never per file,
so no speaker or piece is heard in two splits.  Groups are ranked by a salted SHA-1 of
their name: the ranking does not depend on the build seed, so corpora built with
different seeds (or from different subsets) evaluate on the same held-out groups.
"""

from __future__ import annotations

import hashlib
from typing import Iterable

import numpy as np

from ..errors import UserError


def stable_hash(*parts: object) -> int:
    """A 64-bit integer hash of ``parts`` that is the same on every machine and run."""
    blob = "\x1f".join(str(p) for p in parts).encode("utf-8")
    return int.from_bytes(hashlib.sha1(blob).digest()[:8], "big")


def item_rng(seed: int, *key: object) -> np.random.Generator:
    """A numpy generator determined by the build seed and an item key."""
    return np.random.default_rng([seed & 0xFFFFFFFF, stable_hash(*key) & 0xFFFFFFFFFFFFFFFF])


def check_fractions(valid: float, test: float) -> None:
    """Reject split fractions outside [0, 1) or summing to 1 or more."""
    for name, v in (("valid", valid), ("test", test)):
        if not (0.0 <= float(v) < 1.0):
            raise UserError(f"--{name} must be a fraction in [0, 1), not {v}")
    if valid + test >= 1.0:
        raise UserError(f"valid + test fractions must leave data for training ({valid} + {test} >= 1)")


def assign_groups(groups: Iterable[str], valid: float = 0.1, test: float = 0.1,
                  salt: str = "neurocodec-split") -> dict[str, str]:
    """Map each group id to 'train', 'valid' or 'test'.

    Groups are ordered by ``stable_hash(salt, group)``; the first ``round(test * n)``
    go to test, the next ``round(valid * n)`` to valid, the rest to train.  With three or
    more groups each non-zero fraction gets at least one group, and train keeps at least
    one.  Adding groups moves few existing ones (the order of the others is unchanged).
    """
    check_fractions(valid, test)
    names = sorted(set(groups), key=lambda g: (stable_hash(salt, g), g))
    n = len(names)
    n_test = int(round(test * n))
    n_valid = int(round(valid * n))
    if n >= 3:
        n_test = max(n_test, 1 if test > 0 else 0)
        n_valid = max(n_valid, 1 if valid > 0 else 0)
    while n_test + n_valid >= n and n_test + n_valid > 0:
        if n_valid >= n_test and n_valid > 0:
            n_valid -= 1
        else:
            n_test -= 1
    out = {}
    for i, g in enumerate(names):
        out[g] = "test" if i < n_test else "valid" if i < n_test + n_valid else "train"
    return out
