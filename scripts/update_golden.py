"""Rewrite the golden md5s of tests/codecs/test_shipped_weights.py after the shipped CMRL/LPC-CMRL/CQ
weights change (run on the kernel family the test names in GOLDEN_CPU, one torch thread), and
those of tests/test_golden.py (classic codecs, whole examples/speech.flac) after a deliberate
change of their encoders.

    python scripts/update_golden.py             # both
    python scripts/update_golden.py classic     # tests/test_golden.py only
"""

from __future__ import annotations

import hashlib
import re
import sys
from pathlib import Path

import torch

import neurocodec
from neurocodec import audio
from neurocodec.codecs.cmrl import CMRL_BITRATES
from neurocodec.codecs.cq import CQ_BITRATES

ROOT = Path(__file__).resolve().parents[1]
TEST = ROOT / "tests" / "codecs" / "test_shipped_weights.py"
CLASSIC_TEST = ROOT / "tests" / "test_golden.py"
WEIGHTS = ROOT / "src" / "neurocodec" / "assets" / "weights"
CLASSIC = (("mdct", 16.0), ("mdct", 8.0), ("pcm", 256.0))


def _rewrite(text: str, codec_id: str, kbps: float, md5: str, path: Path) -> str | None:
    key = f'("{codec_id}", {float(kbps)!r}): "'
    text, n = re.subn(re.escape(key) + r'[0-9a-f]{32}"', key + md5 + '"', text)
    if n != 1:
        print(f"update_golden: no GOLDEN entry for {codec_id} {kbps:g} in {path}", file=sys.stderr)
        return None
    print(f"{codec_id} {kbps:g} {md5}")
    return text


def update_classic() -> int:
    wav, sr = audio.read_audio(ROOT / "examples" / "speech.flac")
    text = CLASSIC_TEST.read_text()
    for codec_id, kbps in CLASSIC:
        md5 = hashlib.md5(neurocodec.load(codec_id).compress(wav, sr, bitrate=kbps)).hexdigest()
        text = _rewrite(text, codec_id, kbps, md5, CLASSIC_TEST)
        if text is None:
            return 2
    CLASSIC_TEST.write_text(text)
    return 0


def main() -> int:
    torch.set_num_threads(1)
    rc = update_classic()
    if rc or sys.argv[1:] == ["classic"]:
        return rc
    wav, sr = audio.read_audio(ROOT / "examples" / "speech.flac")
    wav = wav[:, : 2 * sr]  # the test codes the first 2 s
    text = TEST.read_text()
    lpc = tuple(b for b in CMRL_BITRATES if (WEIGHTS / f"lpc-cmrl-{b:g}k").is_dir())
    for codec_id, rates in (("cq", CQ_BITRATES), ("cmrl", CMRL_BITRATES), ("lpc-cmrl", lpc)):
        for kbps in rates:
            md5 = hashlib.md5(neurocodec.load(codec_id).compress(wav, sr, bitrate=kbps)).hexdigest()
            key = f'("{codec_id}", {float(kbps)!r}): "'
            text, n = re.subn(re.escape(key) + r'[0-9a-f]{32}"', key + md5 + '"', text)
            if n != 1:
                print(f"update_golden: no GOLDEN entry for {codec_id} {kbps:g} in {TEST}", file=sys.stderr)
                return 2
            print(f"{codec_id} {kbps:g} {md5}")
    TEST.write_text(text)
    print(f"cpu capability: {torch.backends.cpu.get_cpu_capability()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
