"""Concurrent raters against a real server: every rating stored exactly once, none lost, replays refused.
(The 50-rater version with requests/s and p99 latency is bench/bench_listen_load.py.)"""

import asyncio
import json

from neurocodec.listen.plan import Plan
from neurocodec.listen.server.runner import running_server
from neurocodec.listen.simulate import take_tests
from neurocodec.listen.store import read_ratings


def test_concurrent_raters_lose_nothing(tmp_path, make_items):
    from neurocodec.listen.prepare import find_items, parse_conditions, prepare_test

    folder = tmp_path / "t"
    prepare_test(find_items(make_items(tmp_path / "items", seconds=0.3)), parse_conditions("pcm"), folder, raters=12, seed=1)
    plan = Plan.load(folder)
    tokens = json.loads((folder / "secrets.json").read_text())["raters"]
    with running_server(folder) as url:
        runs = asyncio.run(take_tests(url, [tokens[r.id] for r in plan.raters], fetch_audio=False, replay=True))
    stored = read_ratings(folder / "ratings.sqlite")
    rater_of = {t: r for r, t in tokens.items()}
    sent = {(rater_of[run.token], k, letter): v for run in runs for k, s in run.sent.items() for letter, v in s.items()}
    got = [(r.rater, r.trial, r.letter) for r in stored]
    assert len(got) == len(set(got))  # nothing twice
    assert {(r.rater, r.trial, r.letter): r.score for r in stored} == sent  # nothing lost, nothing changed
    assert len(sent) == 12 * 2 * 4
    assert all(s == [409, 409] for s in (run.replay_statuses for run in runs))
    for r in stored:  # each letter's score landed on the condition the plan put behind it
        trial = plan.rater(r.rater).trials[r.trial]
        assert trial.item == r.item and trial.order["ABCD".index(r.letter)] == r.condition
