#!/usr/bin/env python3
"""Load of the listening-test server: N concurrent raters each take a whole test.

Prepares a synthetic test (``--items`` items of ``--seconds`` s, conditions pcm and mdct:16
plus the hidden reference and both anchors), starts ``neurocodec listen serve`` as its own
process on a free loopback port (uvicorn, one worker), and runs ``--raters`` simulated raters
at once over HTTP (httpx, asyncio): join, training, then per trial the trial, every stimulus's
WAV, a draft, the submission and a replay of the submission.  Prints requests/s and latency
percentiles, then verifies the database: every rating stored exactly once with the value sent,
and every replay refused with 409.  The server's CPU time per request is printed too: on a
shared machine it says more than wall-clock rates do.

    .venv/bin/python bench/bench_listen_load.py [--raters 50] [--items 4] [--seconds 3] [--no-audio]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf


def make_items(folder: Path, n: int, seconds: float, sr: int = 16000) -> Path:
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * sr)) / sr
    for k in range(n):
        x = 0.2 * np.sin(2 * np.pi * (200 + 150 * k) * t) + 0.05 * rng.standard_normal(t.size)
        sf.write(folder / f"item{k}.wav", x.astype(np.float32), sr)
    return folder


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process (Linux /proc), None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--raters", type=int, default=50)
    ap.add_argument("--items", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--no-audio", action="store_true", help="skip the WAV downloads (API requests only)")
    args = ap.parse_args()

    from neurocodec.listen.plan import Plan
    from neurocodec.listen.prepare import find_items, parse_conditions, prepare_test
    from neurocodec.listen.simulate import take_tests
    from neurocodec.listen.store import read_ratings

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "items").mkdir()
        folder = tmp / "test"
        prepare_test(find_items(make_items(tmp / "items", args.items, args.seconds)), parse_conditions("pcm,mdct:16"),
                     folder, raters=args.raters, seed=0, title="load bench")
        plan = Plan.load(folder)
        tokens = json.loads((folder / "secrets.json").read_text())["raters"]
        proc = subprocess.Popen([sys.executable, "-m", "neurocodec", "listen", "serve", str(folder), "--port", "0"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            first = proc.stdout.readline()
            if not first.startswith("admin"):
                print(f"server did not start: {first}{proc.stderr.read()}", file=sys.stderr)
                return 1
            base = first.split()[1].split("/admin")[0]
            cpu0 = cpu_seconds(proc.pid)
            t0 = time.perf_counter()
            runs = asyncio.run(take_tests(base, [tokens[r.id] for r in plan.raters], fetch_audio=not args.no_audio,
                                          replay=True))
            wall = time.perf_counter() - t0
            cpu1 = cpu_seconds(proc.pid)
        finally:
            proc.terminate()
            proc.wait(timeout=20)
        lat = np.array([x for r in runs for x in r.latencies]) * 1000
        n_req = lat.size
        stim = len(plan.conditions)
        print(f"raters {args.raters}, {args.items} trials each, {stim} stimuli per trial, "
              f"audio {'off' if args.no_audio else f'{args.seconds:g} s WAV per stimulus'}")
        print(f"requests        {n_req} in {wall:.2f} s = {n_req / wall:.0f} requests/s")
        print(f"latency ms      p50 {np.percentile(lat, 50):.1f}  p90 {np.percentile(lat, 90):.1f}  "
              f"p99 {np.percentile(lat, 99):.1f}  max {lat.max():.1f}")
        if cpu0 is not None and cpu1 is not None:
            print(f"server CPU      {cpu1 - cpu0:.2f} s = {1000 * (cpu1 - cpu0) / n_req:.2f} ms per request "
                  f"(less sensitive than wall time to other load; load average {os.getloadavg()[0]:.1f})")
        stored = read_ratings(folder / "ratings.sqlite")
        rater_of = {t: r for r, t in tokens.items()}
        sent = {(rater_of[run.token], k, L): v for run in runs for k, s in run.sent.items() for L, v in s.items()}
        keys = [(r.rater, r.trial, r.letter) for r in stored]
        got = {(r.rater, r.trial, r.letter): r.score for r in stored}
        replays = [s for r in runs for s in r.replay_statuses]
        ok = (len(keys) == len(set(keys)) == len(sent) == args.raters * args.items * stim and got == sent
              and replays and all(s == 409 for s in replays) and all(s < 400 for r in runs for s in r.statuses
                                                                    if s not in (409,)))
        print(f"ratings         sent {len(sent)}, stored {len(stored)}, distinct {len(set(keys))}, "
              f"values equal: {got == sent}")
        print(f"replays         {len(replays)} sent, {sum(s == 409 for s in replays)} refused with 409")
        print("none lost, none twice" if ok else "MISMATCH")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
