"""Bitrate of a codec over a whole eval split: total bytes / total seconds, next to the mean of
the per-file rates that `neurocodec eval` reports (short files weigh as much as long ones there,
and every file carries a container header and a last, partly filled chunk).  Both come from the
report's ``summary.json`` (:func:`neurocodec.eval.report.summarize`).

    python scripts/split_bitrate.py reports/speech16-learned --codecs cq,cmrl
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("report", help="report folder of neurocodec eval (with summary.json)")
    ap.add_argument("--codecs", default="", help="comma-separated codec ids (default: all)")
    args = ap.parse_args(argv)
    path = Path(args.report) / "summary.json"  # the report's own conditions
    if not path.is_file():
        print(f"split_bitrate: no summary.json in {args.report}", file=sys.stderr)
        return 2
    wanted = {c for c in args.codecs.split(",") if c}
    conditions = [c for c in json.loads(path.read_text())["conditions"] if not wanted or c["codec"] in wanted]
    if any(c.get("total_kbps") is None for c in conditions):
        print(f"split_bitrate: {path} has no whole-split rates; run the eval again to rewrite it", file=sys.stderr)
        return 2
    print("| codec | nominal kbps | files | seconds | mean of files kbps | vs nominal | total kbps | vs nominal |")
    print("|---|---|---|---|---|---|---|---|")
    for c in conditions:
        kbps, mean, total = c["bitrate"], c["measured_kbps"]["mean"], c["total_kbps"]
        print(f"| {c['codec']} | {kbps:g} | {c['files']} | {c['seconds']:.0f} | {mean:.2f} | "
              f"{100 * (mean / kbps - 1):+.1f}% | {total:.2f} | {100 * (total / kbps - 1):+.1f}% |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
