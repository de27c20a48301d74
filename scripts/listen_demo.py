#!/usr/bin/env python3
"""Simulated raters take a prepared listening test through the real web server.

Starts the test's server on a free loopback port (uvicorn in a thread) and lets ``--raters``
simulated listeners (all the test's rater links by default) take the whole test over HTTP, as
``neurocodec.listen.simulate`` describes: blind, scoring what they download by its
log-spectral distance to the reference, with a per-rater bias and noise; ``--careless N`` of
them answer at random (post-screening should exclude them).  The ratings are simulated: they
show the pipeline (prepare -> serve -> results), not how people hear the codecs.

    .venv/bin/python scripts/listen_demo.py TEST_DIR [--raters N] [--careless 2] [--seed 0]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

import numpy as np


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("test_dir")
    ap.add_argument("--raters", type=int, default=None, help="how many of the test's raters take part (default: all)")
    ap.add_argument("--careless", type=int, default=2, help="raters who answer at random")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    from neurocodec.listen.plan import Plan
    from neurocodec.listen.server.runner import running_server
    from neurocodec.listen.simulate import listener_scorer, take_tests

    folder = Path(args.test_dir)
    plan = Plan.load(folder)
    tokens = json.loads((folder / "secrets.json").read_text())["raters"]
    ids = [r.id for r in plan.raters][: args.raters]
    scorers = [listener_scorer(np.random.default_rng([args.seed, i]), careless=i >= len(ids) - args.careless)
               for i in range(len(ids))]
    with running_server(folder) as url:
        runs = asyncio.run(take_tests(url, [tokens[r] for r in ids], scorers=scorers, seed=args.seed))
    n = sum(len(r.sent) for r in runs)
    print(f"{len(runs)} simulated raters ({args.careless} careless) submitted {n} trials to {url}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
