"""Bitrate of a codec over a whole eval split: total bytes / total seconds, next to the mean of
the per-file rates that `neurocodec eval` reports (short files weigh as much as long ones there,
and every file carries a container header and a last, partly filled chunk).

    python scripts/split_bitrate.py reports/speech16-learned --codecs cq,cmrl
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections import defaultdict
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("report", help="report folder of neurocodec eval (with results.csv)")
    ap.add_argument("--codecs", default="", help="comma-separated codec ids (default: all)")
    args = ap.parse_args(argv)
    path = Path(args.report) / "results.csv"  # the results of the report's conditions, one row per file
    if not path.is_file():
        print(f"split_bitrate: no results.csv in {args.report}", file=sys.stderr)
        return 2
    wanted = {c for c in args.codecs.split(",") if c}
    groups: dict[tuple, list] = defaultdict(list)
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            if (not wanted or r["codec"] in wanted) and int(r["file_bytes"] or 0):
                groups[(r["codec"], float(r["bitrate"]))].append(r)
    print("| codec | nominal kbps | files | seconds | mean of files kbps | vs nominal | total kbps | vs nominal |")
    print("|---|---|---|---|---|---|---|---|")
    for (codec, kbps), rows in sorted(groups.items()):
        seconds = sum(float(r["duration_s"]) for r in rows)
        total = 8.0 * sum(int(r["file_bytes"]) for r in rows) / seconds / 1000.0
        mean = sum(float(r["measured_kbps"]) for r in rows) / len(rows)
        print(f"| {codec} | {kbps:g} | {len(rows)} | {seconds:.0f} | {mean:.2f} | {100 * (mean / kbps - 1):+.1f}% | "
              f"{total:.2f} | {100 * (total / kbps - 1):+.1f}% |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
