"""Bitrate of a codec over a whole eval split: total bytes / total seconds, next to the mean of
the per-file rates that `neurocodec eval` reports (short files weigh as much as long ones there,
and every file carries a container header and a last, partly filled chunk).

    python scripts/split_bitrate.py reports/speech16-learned --codecs cq,cmrl
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("report", help="report folder of neurocodec eval (with results.jsonl)")
    ap.add_argument("--codecs", default="", help="comma-separated codec ids (default: all)")
    args = ap.parse_args(argv)
    path = Path(args.report) / "results.jsonl"
    if not path.is_file():
        print(f"split_bitrate: no results.jsonl in {args.report}", file=sys.stderr)
        return 2
    wanted = {c for c in args.codecs.split(",") if c}
    latest: dict[tuple, dict] = {}
    for line in path.read_text().splitlines():
        r = json.loads(line)
        if (not wanted or r["codec"] in wanted) and r.get("file_bytes"):
            latest[(r["codec"], r["bitrate"], r["item"])] = r  # the last line of an item wins (resumed runs)
    groups: dict[tuple, list] = defaultdict(list)
    for (codec, kbps, _), r in latest.items():
        groups[(codec, kbps)].append(r)
    print("| codec | nominal kbps | files | seconds | mean of files kbps | total kbps | total vs nominal |")
    print("|---|---|---|---|---|---|---|")
    for (codec, kbps), rows in sorted(groups.items()):
        seconds = sum(r["duration_s"] for r in rows)
        total = 8.0 * sum(r["file_bytes"] for r in rows) / seconds / 1000.0
        mean = sum(r["measured_kbps"] for r in rows) / len(rows)
        print(f"| {codec} | {kbps:g} | {len(rows)} | {seconds:.0f} | {mean:.2f} | {total:.2f} | "
              f"{100 * (total / kbps - 1):+.1f}% |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
