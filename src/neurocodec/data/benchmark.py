"""Build speed per source: ``python -m neurocodec.data.benchmark [--hours H] [--jobs N]``.

Builds each source alone into a temporary folder (mixtures with speech-real as their
speech, whose time is subtracted) and prints hours of audio made per minute of wall time.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from .build import build_corpus
from .manifest import SOURCES


def _timed(out: Path, sources: tuple[str, ...], hours: float, sample_rate: int, jobs: int) -> tuple[float, dict]:
    t0 = time.perf_counter()
    m = build_corpus(out, sample_rate=sample_rate, hours=hours, sources=sources, jobs=jobs, progress=False)
    by_source: dict[str, float] = {}
    for r in m:
        by_source[r.source] = by_source.get(r.source, 0.0) + r.duration
    return time.perf_counter() - t0, by_source


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hours", type=float, default=0.1, help="hours per source (default 0.1)")
    p.add_argument("--sample-rate", type=int, default=24000)
    p.add_argument("--jobs", type=int, default=2)
    args = p.parse_args(argv)
    print(f"{'source':16s} {'audio min':>9s} {'wall s':>7s} {'h audio / min wall':>19s}")
    with tempfile.TemporaryDirectory(prefix="nc-bench-") as tmp:
        speech_real_rate = None
        for src in SOURCES:
            if src == "mixture":
                # mixtures need speech: build speech-real + mixture with the mixture share alone
                wall, got = _timed(Path(tmp) / src, ("speech-real", "mixture"), args.hours * (0.25 + 0.2) / 0.2,
                                   args.sample_rate, args.jobs)
                wall -= got.get("speech-real", 0.0) / speech_real_rate if speech_real_rate else 0.0
            else:
                wall, got = _timed(Path(tmp) / src, (src,), args.hours, args.sample_rate, args.jobs)
                if src == "speech-real":
                    speech_real_rate = got.get(src, 0.0) / wall
            audio = got.get(src, 0.0)
            print(f"{src:16s} {audio / 60:9.1f} {wall:7.1f} {audio / 3600 / (wall / 60):19.3f}", flush=True)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
