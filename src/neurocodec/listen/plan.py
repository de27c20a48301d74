"""The plan of a MUSHRA test (ITU-R BS.1534-3): items, conditions, and each rater's orders.

A test shows every item once per rater (one *trial* per item).  In a trial the rater hears the
open reference and, behind blind letters, every condition: the hidden reference, the 3.5 kHz
and 7 kHz low-pass anchors (BS.1534-3 §5.1) and the codecs under test.

Orders are seeded and balanced with Latin squares: the trial order of rater ``r`` is row
``r mod R`` of a Williams square over the items (each item at each position once per block of
``R`` raters, and each item directly after each other item equally often; ``R = n`` for an
even number of items, ``2n`` for an odd one), the rows taken in a seeded order and the items
relabelled by a seeded permutation.  The letters of a trial come the same way from a Williams
square over the conditions, one relabelling per item, so that over a block of raters each
condition sits behind each letter equally often.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..errors import UserError

PLAN_FORMAT = "neurocodec-mushra/1"
PLAN_FILE = "plan.json"
SECRETS_FILE = "secrets.json"
DB_FILE = "ratings.sqlite"
REFERENCE = "reference"
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


class PlanError(UserError):
    """A test folder is missing, incomplete or inconsistent."""


@dataclass(frozen=True)
class Item:
    """One excerpt: the open reference of its trials."""

    id: str  # i00, i01, ...
    key: str  # where it came from (relative path in the folder or manifest)
    group: str  # panel of the results figure (manifest source, folder, item name, ...)
    sample_rate: int
    channels: int
    num_samples: int
    gain: float = 1.0  # common gain applied to all its stimuli so that none clips (levels stay relative)

    @property
    def duration_s(self) -> float:
        return self.num_samples / self.sample_rate


@dataclass(frozen=True)
class Condition:
    """What a stimulus is: the hidden reference, a low-pass anchor or a codec at one rate."""

    id: str  # reference | anchor-3.5k | anchor-7k | <codec>-<kbps>
    kind: str  # reference | anchor | codec
    label: str  # shown in results, never to raters
    codec: str = ""
    kbps: float = 0.0
    cutoff_hz: float = 0.0


@dataclass(frozen=True)
class Trial:
    """One rater's trial: an item and the conditions behind the letters A, B, C, ..."""

    item: str
    order: tuple[str, ...]


@dataclass(frozen=True)
class RaterPlan:
    id: str
    trials: tuple[Trial, ...]


@dataclass
class Plan:
    title: str
    seed: int
    items: list[Item]
    conditions: list[Condition]
    raters: list[RaterPlan]
    stimuli: dict[str, dict[str, dict]] = field(default_factory=dict)  # item -> condition -> {file, ...}
    meta: dict = field(default_factory=dict)

    # -- look-ups
    def item(self, item_id: str) -> Item:
        for it in self.items:
            if it.id == item_id:
                return it
        raise KeyError(item_id)

    def condition(self, cond_id: str) -> Condition:
        for c in self.conditions:
            if c.id == cond_id:
                return c
        raise KeyError(cond_id)

    def rater(self, rater_id: str) -> RaterPlan:
        for r in self.raters:
            if r.id == rater_id:
                return r
        raise KeyError(rater_id)

    # -- files
    def to_json(self) -> dict:
        return {
            "format": PLAN_FORMAT, "title": self.title, "seed": self.seed, "meta": self.meta,
            "items": [asdict(i) for i in self.items],
            "conditions": [asdict(c) for c in self.conditions],
            "stimuli": self.stimuli,
            "raters": [{"id": r.id, "trials": [{"item": t.item, "order": list(t.order)} for t in r.trials]}
                       for r in self.raters],
        }

    @classmethod
    def from_json(cls, d: dict) -> "Plan":
        if d.get("format") != PLAN_FORMAT:
            raise PlanError(f"not a listening-test plan (format {d.get('format')!r}, expected {PLAN_FORMAT})")
        try:
            return cls(
                title=d["title"], seed=int(d["seed"]), meta=d.get("meta", {}),
                items=[Item(**i) for i in d["items"]],
                conditions=[Condition(**c) for c in d["conditions"]],
                stimuli=d["stimuli"],
                raters=[RaterPlan(r["id"], tuple(Trial(t["item"], tuple(t["order"])) for t in r["trials"]))
                        for r in d["raters"]],
            )
        except (KeyError, TypeError, ValueError) as e:
            raise PlanError(f"malformed plan: {type(e).__name__}: {e}") from None

    def save(self, folder: str | os.PathLike) -> Path:
        path = Path(folder) / PLAN_FILE
        path.write_text(json.dumps(self.to_json(), indent=1))
        return path

    @classmethod
    def load(cls, folder: str | os.PathLike) -> "Plan":
        folder = Path(folder)
        path = folder / PLAN_FILE
        if not folder.is_dir():
            raise PlanError(f"test folder not found: {folder}")
        if not path.exists():
            raise PlanError(f"{folder} is not a listening test (no {PLAN_FILE}; make one with 'neurocodec listen prepare')")
        try:
            d = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise PlanError(f"{path} is not valid JSON: {e}") from None
        return cls.from_json(d)


def williams_square(n: int) -> list[list[int]]:
    """Rows of a Williams design over ``0..n-1``: a Latin square (each symbol once per row and
    column) in which each symbol directly follows each other symbol equally often.

    For even ``n`` the ``n`` rows ``(0, 1, n-1, 2, n-2, ...) + r mod n``; for odd ``n`` these and
    their reversals (``2n`` rows), since no single square is carry-over balanced then.
    """
    if n < 1:
        raise ValueError("n must be >= 1")
    first, lo, hi = [0], 1, n - 1
    while len(first) < n:
        first.append(lo)
        lo += 1
        if len(first) < n:
            first.append(hi)
            hi -= 1
    rows = [[(v + r) % n for v in first] for r in range(n)]
    if n % 2 == 1 and n > 1:
        rows += [row[::-1] for row in rows]
    return rows


def balanced_orders(n_raters: int, item_ids: list[str], condition_ids: list[str], seed: int) -> list[RaterPlan]:
    """Each rater's trial order and letter assignment (module docstring), reproducible from ``seed``."""
    if n_raters < 1:
        raise UserError("a test needs at least one rater")
    if not item_ids or not condition_ids:
        raise UserError("a test needs at least one item and one condition")
    rng = np.random.default_rng(seed)
    trial_rows = williams_square(len(item_ids))
    row_order = rng.permutation(len(trial_rows))
    item_labels = rng.permutation(len(item_ids))
    cond_rows = williams_square(len(condition_ids))
    per_item = {}
    for iid in item_ids:  # one relabelling and row order of the condition square per item
        per_item[iid] = (rng.permutation(len(condition_ids)), rng.permutation(len(cond_rows)))
    raters = []
    width = max(2, len(str(n_raters)))
    for r in range(n_raters):
        row = trial_rows[row_order[r % len(trial_rows)]]
        trials = []
        for pos in row:
            iid = item_ids[item_labels[pos]]
            labels, c_rows = per_item[iid]
            crow = cond_rows[c_rows[r % len(cond_rows)]]
            trials.append(Trial(iid, tuple(condition_ids[labels[c]] for c in crow)))
        raters.append(RaterPlan(f"r{r + 1:0{width}d}", tuple(trials)))
    return raters
