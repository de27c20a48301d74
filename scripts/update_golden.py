"""Rewrite the golden md5s of tests/codecs/test_shipped_weights.py after the shipped CMRL/CQ
weights change (run on the kernel family the test names in GOLDEN_CPU, one torch thread).

    python scripts/update_golden.py
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


def main() -> int:
    torch.set_num_threads(1)
    wav, sr = audio.read_audio(ROOT / "examples" / "speech.flac")
    wav = wav[:, : 2 * sr]  # the test codes the first 2 s
    text = TEST.read_text()
    for codec_id, rates in (("cq", CQ_BITRATES), ("cmrl", CMRL_BITRATES)):
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
