"""PESQ-WB and bitrate of CMRL/CQ (and byun2023 perceptual) weights on a corpus split, on the real bitstream path
(compress -> chunk payloads -> decompress), for shipped points and retrained exports alike.

    python scripts/eval_cascade.py --split valid cmrl-15.85k /work/data-cmrl/w/cmrl-15.85k

A name is a shipped point (src/neurocodec/assets/weights/NAME) or a folder / model.safetensors.
The rate is the payload (what the codec returns) over the duration, per file (mean) and in
total; the container adds about 0.25 kbps on a 2 s file (docs/bitstream.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from safetensors import safe_open

from neurocodec.codecs.cmrl import CmrlCodec, LpcCmrlCodec
from neurocodec.codecs.cq import CqCodec
from neurocodec.codecs.perceptual import PerceptualFemCodec, PerceptualHpmCodec
from neurocodec.data.manifest import Manifest
from neurocodec.eval.metrics_ext import pesq_wb, visqol_speech

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "src" / "neurocodec" / "assets" / "weights"
CLASSES = {"cq": CqCodec, "cmrl": CmrlCodec, "lpc-cmrl": LpcCmrlCodec,
           "perceptual-fem": PerceptualFemCodec, "perceptual-hpm": PerceptualHpmCodec}


def load(name: str):
    p = Path(name)
    if not p.exists():
        p = WEIGHTS / name
    if p.is_dir():
        p = p / "model.safetensors"
    with safe_open(str(p), framework="pt") as f:
        codec_id = (f.metadata() or {}).get("codec_id")
    return CLASSES[codec_id].from_pretrained(p)


def corpus_files(data: str, split: str, sources: str, limit: int | None) -> list[np.ndarray]:
    """The float32 signals of a manifest's ``split`` from ``sources`` (comma-separated), the first ``limit``."""
    man = Manifest.load(data)
    recs = man.filter(split=split, source=sources.split(",")).records[:limit]
    return [sf.read(str(man.abspath(r)), dtype="float32")[0] for r in recs]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+")
    ap.add_argument("--data", default="/work/corpus16/manifest.jsonl")
    ap.add_argument("--split", default="valid")
    ap.add_argument("--sources", default="speech-real,speech-tts")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--visqol", action="store_true", help="also ViSQOL (speech mode) and SNR per file")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    files = corpus_files(a.data, a.split, a.sources, a.limit)
    seconds = sum(x.size for x in files) / 16000
    for name in a.models:
        model = load(name)
        pesq, kbps, nbytes, visqol, snr = [], [], 0, [], []
        for x in files:
            enc = model.compress(x[None, :])
            n = sum(len(c) for c in enc.chunks)
            nbytes += n
            kbps.append(8 * n / (x.size / 16000) / 1000)
            y = model.decompress(enc.chunks, 1, x.size, enc.bitrate_kbps)[0]
            pesq.append(pesq_wb(x, y, 16000))
            if a.visqol:
                try:
                    visqol.append(visqol_speech(x, y, 16000))
                except Exception:  # ViSQOL cannot score files shorter than its patches (the harness: n/a)
                    visqol.append(float("nan"))
                snr.append(10 * np.log10(np.sum(x.astype(np.float64) ** 2) / max(np.sum((x - y) ** 2.0), 1e-20)))
        extra = {"visqol_speech": round(float(np.nanmean(visqol)), 3), "snr_db": round(float(np.mean(snr)), 2)} if a.visqol else {}
        print(json.dumps({"model": name, "split": a.split, "files": len(files), "seconds": round(seconds, 1),
                          "nominal_kbps": model.bitrates.default, "pesq_wb": round(float(np.nanmean(pesq)), 3), **extra,
                          "mean_file_kbps": round(float(np.mean(kbps)), 3),
                          "total_kbps": round(8 * nbytes / seconds / 1000, 3)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
