"""PESQ-WB of one learned speech point on the two evaluation paths, file by file: the model's own
``compress`` (payload only, what ``scripts/eval_cascade.py`` measures) and the ``.ncdc`` container
through ``neurocodec.api`` (what ``neurocodec eval`` measures: the whole file, header and framing
included, is held to nominal x duration, so the payload gets less).

    python scripts/compare_eval_paths.py perceptual-fem-16k 16 --data corpus16/manifest.jsonl --limit 8
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import soundfile as sf
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from eval_cascade import load  # noqa: E402

from neurocodec import api  # noqa: E402
from neurocodec.data.manifest import Manifest  # noqa: E402
from neurocodec.eval.metrics_ext import pesq_wb  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("name", help="a shipped point (e.g. perceptual-fem-16k) or a weights folder")
    ap.add_argument("kbps", type=float)
    ap.add_argument("--codec", default=None, help="registry id for the container path (default: NAME less its rate)")
    ap.add_argument("--data", default="corpus16/manifest.jsonl")
    ap.add_argument("--split", default="test")
    ap.add_argument("--sources", default="speech-real,speech-tts")
    ap.add_argument("--limit", type=int, default=8)
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    man = Manifest.load(a.data)
    recs = man.filter(split=a.split, source=a.sources.split(",")).records[: a.limit]
    model = load(a.name)
    codec = api.load(a.codec or a.name.rsplit("-", 1)[0])
    print(f"{'file':<44} {'payload B':>9} {'model':>6} {'file B':>7} {'.ncdc':>6}")
    for r in recs:
        x = sf.read(str(man.abspath(r)), dtype="float32")[0]
        enc = model.compress(x[None])
        y = model.decompress(enc.chunks, 1, x.size, enc.bitrate_kbps)[0]
        data = codec.compress(x[None], 16000, bitrate=a.kbps)
        d, _ = api.decompress(data)
        print(f"{str(r.path)[-44:]:<44} {sum(len(c) for c in enc.chunks):>9} {pesq_wb(x, y, 16000):6.3f} "
              f"{len(data):>7} {pesq_wb(x, d[0], 16000):6.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
