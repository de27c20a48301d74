"""Ratings of a listening test in SQLite (WAL journal, every commit synchronous).

Tables (one row per fact; the primary keys make a second copy impossible):

- ``progress(rater, next_trial, training_done, started_at, updated_at)``
- ``nonces(rater, trial, nonce, issued_at)``: the single-use token a trial's submission must carry
- ``drafts(rater, trial, body, updated_at)``: slider positions and played letters while a trial is open
- ``submissions(rater, trial, nonce, seconds, submitted_at)``
- ``ratings(rater, trial, item, condition, letter, score, submitted_at)``, key ``(rater, trial, condition)``

Rules (:meth:`Store.submit`): a submission is accepted for the rater's current trial only, with
the nonce issued for that trial; it stores the trial's ratings and advances the rater in one
``BEGIN IMMEDIATE`` transaction.  Whatever arrives later for a stored trial (a replay, a
double click, a second tab) is a :class:`Conflict` and changes nothing.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS progress (
    rater TEXT PRIMARY KEY, next_trial INTEGER NOT NULL DEFAULT 0, training_done INTEGER NOT NULL DEFAULT 0,
    started_at REAL, updated_at REAL);
CREATE TABLE IF NOT EXISTS nonces (
    rater TEXT NOT NULL, trial INTEGER NOT NULL, nonce TEXT NOT NULL, issued_at REAL NOT NULL,
    PRIMARY KEY (rater, trial));
CREATE TABLE IF NOT EXISTS drafts (
    rater TEXT NOT NULL, trial INTEGER NOT NULL, body TEXT NOT NULL, updated_at REAL NOT NULL,
    PRIMARY KEY (rater, trial));
CREATE TABLE IF NOT EXISTS submissions (
    rater TEXT NOT NULL, trial INTEGER NOT NULL, nonce TEXT NOT NULL, seconds REAL, submitted_at REAL NOT NULL,
    PRIMARY KEY (rater, trial));
CREATE TABLE IF NOT EXISTS ratings (
    rater TEXT NOT NULL, trial INTEGER NOT NULL, item TEXT NOT NULL, condition TEXT NOT NULL, letter TEXT NOT NULL,
    score REAL NOT NULL CHECK (score >= 0 AND score <= 100), submitted_at REAL NOT NULL,
    PRIMARY KEY (rater, trial, condition));
"""


class Conflict(Exception):
    """The request contradicts what is stored (trial already submitted, stale nonce, wrong trial)."""


@dataclass(frozen=True)
class Progress:
    rater: str
    next_trial: int
    training_done: bool
    started_at: float | None
    updated_at: float | None


@dataclass(frozen=True)
class Rating:
    rater: str
    trial: int
    item: str
    condition: str
    letter: str
    score: float


class Store:
    """Thread-safe access to ``ratings.sqlite``: one connection per thread, WAL, synchronous=FULL."""

    def __init__(self, path: str | os.PathLike, plan_id: str = ""):
        self.path = Path(path)
        self._local = threading.local()
        con = self._con()
        with con:
            con.executescript(SCHEMA)
            row = con.execute("SELECT value FROM meta WHERE key='plan_id'").fetchone()
            if row is None:
                con.execute("INSERT INTO meta VALUES ('plan_id', ?)", (plan_id,))
            elif plan_id and row[0] != plan_id:
                from .plan import PlanError

                raise PlanError(f"{self.path} holds ratings of another plan (plan id {row[0]}, this plan {plan_id})")

    def _con(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            con = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=True)
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=FULL")
            con.execute("PRAGMA busy_timeout=30000")
            self._local.con = con
        return con

    def close(self) -> None:
        con = getattr(self._local, "con", None)
        if con is not None:
            con.close()
            self._local.con = None

    # -- progress
    def progress(self, rater: str) -> Progress:
        row = self._con().execute(
            "SELECT next_trial, training_done, started_at, updated_at FROM progress WHERE rater=?", (rater,)).fetchone()
        if row is None:
            return Progress(rater, 0, False, None, None)
        return Progress(rater, int(row[0]), bool(row[1]), row[2], row[3])

    def all_progress(self) -> dict[str, Progress]:
        rows = self._con().execute("SELECT rater, next_trial, training_done, started_at, updated_at FROM progress")
        return {r[0]: Progress(r[0], int(r[1]), bool(r[2]), r[3], r[4]) for r in rows}

    def _touch(self, con, rater: str) -> None:
        now = time.time()
        con.execute("INSERT INTO progress (rater, started_at, updated_at) VALUES (?, ?, ?) "
                    "ON CONFLICT(rater) DO UPDATE SET updated_at=excluded.updated_at", (rater, now, now))

    def finish_training(self, rater: str) -> None:
        con = self._con()
        con.execute("BEGIN IMMEDIATE")
        try:
            self._touch(con, rater)
            con.execute("UPDATE progress SET training_done=1 WHERE rater=?", (rater,))
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise

    # -- trials
    def nonce(self, rater: str, trial: int) -> str:
        """The trial's nonce, issued on first request and the same until the trial is submitted."""
        con = self._con()
        con.execute("BEGIN IMMEDIATE")
        try:
            row = con.execute("SELECT nonce FROM nonces WHERE rater=? AND trial=?", (rater, trial)).fetchone()
            if row is None:
                nonce = secrets.token_urlsafe(16)
                con.execute("INSERT INTO nonces VALUES (?, ?, ?, ?)", (rater, trial, nonce, time.time()))
                self._touch(con, rater)
            else:
                nonce = row[0]
            con.execute("COMMIT")
            return nonce
        except BaseException:
            con.execute("ROLLBACK")
            raise

    def draft(self, rater: str, trial: int) -> dict | None:
        row = self._con().execute("SELECT body FROM drafts WHERE rater=? AND trial=?", (rater, trial)).fetchone()
        return json.loads(row[0]) if row else None

    def _check_open(self, con, rater: str, trial: int, nonce: str) -> None:
        if con.execute("SELECT 1 FROM submissions WHERE rater=? AND trial=?", (rater, trial)).fetchone():
            raise Conflict(f"trial {trial + 1} was already submitted; nothing was stored")
        row = con.execute("SELECT next_trial FROM progress WHERE rater=?", (rater,)).fetchone()
        current = int(row[0]) if row else 0
        if trial != current:
            raise Conflict(f"trial {trial + 1} is not the current trial ({current + 1}); nothing was stored")
        row = con.execute("SELECT nonce FROM nonces WHERE rater=? AND trial=?", (rater, trial)).fetchone()
        if row is None or not secrets.compare_digest(row[0], nonce):
            raise Conflict("the request does not carry this trial's nonce (reload the page); nothing was stored")

    def save_draft(self, rater: str, trial: int, nonce: str, body: dict) -> None:
        con = self._con()
        con.execute("BEGIN IMMEDIATE")
        try:
            self._check_open(con, rater, trial, nonce)
            con.execute("INSERT INTO drafts VALUES (?, ?, ?, ?) ON CONFLICT(rater, trial) DO UPDATE SET "
                        "body=excluded.body, updated_at=excluded.updated_at",
                        (rater, trial, json.dumps(body), time.time()))
            self._touch(con, rater)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise

    def submit(self, rater: str, trial: int, nonce: str, item: str, scores: dict[str, tuple[str, float]],
               seconds: float | None = None) -> None:
        """Store a trial's ratings (``scores``: condition -> (letter, score)) and advance the rater."""
        con = self._con()
        con.execute("BEGIN IMMEDIATE")
        try:
            self._check_open(con, rater, trial, nonce)
            now = time.time()
            con.execute("INSERT INTO submissions VALUES (?, ?, ?, ?, ?)", (rater, trial, nonce, seconds, now))
            con.executemany("INSERT INTO ratings VALUES (?, ?, ?, ?, ?, ?, ?)",
                            [(rater, trial, item, c, letter, float(s), now) for c, (letter, s) in scores.items()])
            self._touch(con, rater)
            con.execute("UPDATE progress SET next_trial=? WHERE rater=?", (trial + 1, rater))
            con.execute("DELETE FROM drafts WHERE rater=? AND trial=?", (rater, trial))
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise

    def ratings(self, rater: str | None = None) -> list[Rating]:
        q = "SELECT rater, trial, item, condition, letter, score FROM ratings"
        args: tuple = ()
        if rater is not None:
            q += " WHERE rater=?"
            args = (rater,)
        rows = self._con().execute(q + " ORDER BY rater, trial, letter", args).fetchall()
        return [Rating(r[0], int(r[1]), r[2], r[3], r[4], float(r[5])) for r in rows]


def read_ratings(path: str | os.PathLike) -> list[Rating]:
    """All stored ratings, read-only (an absent database has none)."""
    path = Path(path)
    if not path.exists():
        return []
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        rows = con.execute("SELECT rater, trial, item, condition, letter, score FROM ratings "
                           "ORDER BY rater, trial, letter").fetchall()
    finally:
        con.close()
    return [Rating(r[0], int(r[1]), r[2], r[3], r[4], float(r[5])) for r in rows]
