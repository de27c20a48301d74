"""Store shipped CMRL/CQ weights as float16 where decoding quality is unchanged.

For each operating point: code ``--files`` validation-split speech files of the corpus with the
float32 model and with its weights rounded to float16 (compress + decompress, the real
bitstream path), compare PESQ-WB and the file sizes, and when PESQ-WB moves by less than
``--tolerance`` rewrite ``model.safetensors`` with float16 tensors (entropy tables stay
integers, in their narrowest integer type), the dtype in ``training.json`` and the card, and the
card's file hashes.  A point already in float16 is only written again in the current layout
(same weights digest, so the same bitstreams).
Then run ``python scripts/update_golden.py`` (the weights digest is in the stream header).

    python scripts/weights_fp16.py --data /work/corpus16/manifest.jsonl [cq-16k cmrl-15.85k ...]
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import re
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from neurocodec.codecs.cmrl import CmrlCodec, LpcCmrlCodec
from neurocodec.codecs.cq import CqCodec
from neurocodec.data.manifest import Manifest
from neurocodec.eval.metrics_ext import pesq_wb
from neurocodec.train.export import _save_native

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "src" / "neurocodec" / "assets" / "weights"
CLASSES = {"cq": CqCodec, "cmrl": CmrlCodec, "lpc-cmrl": LpcCmrlCodec}


def code(model, files):
    pesq, nbytes = [], 0
    for x in files:
        enc = model.compress(x[None, :])
        nbytes += sum(len(c) for c in enc.chunks)
        y = model.decompress(enc.chunks, 1, x.size, enc.bitrate_kbps)[0]
        pesq.append(pesq_wb(x, y, 16000))
    return float(np.nanmean(pesq)), nbytes


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("names", nargs="*")
    ap.add_argument("--data", default="/work/corpus16/manifest.jsonl")
    ap.add_argument("--files", type=int, default=4)
    ap.add_argument("--tolerance", type=float, default=0.02, help="largest PESQ-WB change accepted")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    man = Manifest.load(a.data)
    recs = [r for r in man.filter(split="valid", source=["speech-real", "speech-tts"]).records][: a.files]
    files = [sf.read(str(man.abspath(r)), dtype="float32")[0] for r in recs]
    names = a.names or sorted(p.name for p in WEIGHTS.iterdir() if _codec_id(p) in CLASSES)
    for name in names:
        folder = WEIGHTS / name
        cls = CLASSES[_codec_id(folder)]
        m32 = cls.from_pretrained(folder / "model.safetensors")
        training = json.loads((folder / "training.json").read_text())
        if training.get("dtype") == "float16":
            before = (folder / "model.safetensors").stat().st_size
            _save_native(m32, folder / "model.safetensors", fp16=True)  # float16 again: lossless
            back = cls.from_pretrained(folder / "model.safetensors")
            assert back.weights_digest() == m32.weights_digest(), name
            after = (folder / "model.safetensors").stat().st_size
            print(f"{name}: already float16; re-saved {before:,} -> {after:,} bytes (same weights digest)")
            _update_card(folder)
            continue
        m16 = copy.deepcopy(m32)
        err = 0.0
        with torch.no_grad():
            for p in m16.parameters():
                if p.dtype == torch.float32:
                    r = p.data.half().float()
                    err = max(err, float((r - p.data).abs().max()))
                    p.data = r
        p32, b32 = code(m32, files)
        p16, b16 = code(m16, files)
        verdict = abs(p16 - p32) < a.tolerance
        print(f"{name}: PESQ-WB fp32 {p32:.3f} fp16 {p16:.3f}, bytes {b32} / {b16}, max |w16 - w32| {err:.2e}"
              f" -> {'float16' if verdict else 'kept float32'}", flush=True)
        if not verdict:
            continue
        _save_native(m16, folder / "model.safetensors", fp16=True)
        back = cls.from_pretrained(folder / "model.safetensors")
        assert all(torch.equal(back.state_dict()[k], v) for k, v in m16.state_dict().items()
                   if not k.startswith("rate_steer.")), name
        training["dtype"] = "float16"
        training["fp16_check"] = {"files": len(files), "split": "valid", "pesq_wb_fp32": round(p32, 4),
                                  "pesq_wb_fp16": round(p16, 4), "bytes_fp32": b32, "bytes_fp16": b16,
                                  "max_abs_error": err, "command": "python scripts/weights_fp16.py"}
        (folder / "training.json").write_text(json.dumps(training, indent=2) + "\n")
        _update_card(folder)
    return 0


def _codec_id(folder: Path) -> str | None:
    """The ``codec_id`` in the metadata of ``folder/model.safetensors`` (lpc-cmrl is a cmrl model)."""
    from safetensors import safe_open

    if not (folder / "model.safetensors").is_file():
        return None
    with safe_open(str(folder / "model.safetensors"), framework="pt") as f:
        return (f.metadata() or {}).get("codec_id")


def _update_card(folder: Path, stored: str = "float16") -> None:
    """The card's storage type (``| stored as | ... |``) and the SHA-256 of the files it lists."""
    card_path = folder / "MODEL_CARD.md"
    card = re.sub(r"\| stored as \| [^|\n]+ \|", f"| stored as | {stored} |", card_path.read_text())
    for f in ("model.safetensors", "training.json", "config.json"):
        card = re.sub(rf"(\| {re.escape(f)} \| `)[0-9a-f]{{64}}(`)", rf"\g<1>{sha(folder / f)}\g<2>", card)
    card_path.write_text(card)


if __name__ == "__main__":
    sys.exit(main())
