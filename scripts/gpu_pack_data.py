#!/usr/bin/env python3
"""Pack corpus audio for the GPU machine (which lacks soundfile/soxr): one lossless .ncpack file.

    python scripts/gpu_pack_data.py                      # corpus16 speech, train + valid -> gpu-data/speech-16k.ncpack
    python scripts/gpu_pack_data.py --data M --out gpu-data/x.ncpack --sources speech-real,speech-tts,mixture \
        --splits train,valid --max-seconds train=600,valid=60 --sample-rate 16000

The pack must travel with the working tree (64 MiB in all, tracked files included), so keep it
under ~16 MiB: ``gpu-data/`` is git-ignored and the device call names it in ``carry``
(docs/training.md, "Training on the lent GPU").  Prints the header and the file size.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from neurocodec.data.packed import read_pack, write_pack  # noqa: E402
from neurocodec.errors import UserError  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT / "corpus16" / "manifest.jsonl"), metavar="MANIFEST")
    ap.add_argument("--out", default=str(ROOT / "gpu-data" / "speech-16k.ncpack"))
    ap.add_argument("--splits", default="train,valid")
    ap.add_argument("--sources", default="speech-real,speech-tts", help="comma-separated; 'all' for every source")
    ap.add_argument("--sample-rate", type=int, default=16000)
    ap.add_argument("--max-seconds", default="", metavar="SPLIT=S,...", help="at most this much audio per split")
    ap.add_argument("--max-mib", type=float, default=16.0, help="fail when the pack is larger (default 16)")
    a = ap.parse_args(argv)
    try:
        limits = {k: float(v) for k, v in (item.split("=") for item in a.max_seconds.split(",") if item)}
    except ValueError:
        print(f"gpu_pack_data: error: --max-seconds wants SPLIT=SECONDS,..., got {a.max_seconds!r}", file=sys.stderr)
        return 2
    sources = None if a.sources == "all" else [s for s in a.sources.split(",") if s]
    t0 = time.time()
    try:
        info = write_pack(a.data, a.out, splits=[s for s in a.splits.split(",") if s], sources=sources,
                          sample_rate=a.sample_rate, max_seconds=limits)
        pack = read_pack(a.out)  # the file reads back
    except UserError as e:
        print(f"gpu_pack_data: error: {e}", file=sys.stderr)
        return 2
    mib = info["bytes"] / 2**20
    print(json.dumps({k: v for k, v in info.items()}, indent=1))
    st = info["stats"].values()
    print(f"{a.out}: {info['bytes']:,} bytes ({mib:.2f} MiB; raw int16 {sum(s['int16_bytes'] for s in st):,}, "
          f"source files {sum(s['source_file_bytes'] for s in st):,}), "
          + ", ".join(f"{n} {sp.seconds(pack.sample_rate):.1f} s in {sp.num_files} files" for n, sp in pack.splits.items())
          + f"; {time.time() - t0:.0f} s")
    if mib > a.max_mib:
        print(f"gpu_pack_data: error: the pack is {mib:.2f} MiB, over --max-mib {a.max_mib:g}: pack fewer seconds "
              "(--max-seconds) or sources", file=sys.stderr)
        Path(a.out).unlink()
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
