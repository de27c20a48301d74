#!/usr/bin/env python3
"""Regenerate the result blocks of README.md from the commands that produce them.

Each block sits between ``<!-- result:NAME -->`` and ``<!-- /result:NAME -->`` and is
replaced by the commands (shown verbatim) and what the last one printed on stdout.  Numbers
in the README therefore always come from a command in this repository:

    .venv/bin/python scripts/update_readme.py            # every block
    .venv/bin/python scripts/update_readme.py toy eval-speech   # some blocks
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NC = ".venv/bin/neurocodec"

CORPUS = f"{NC} data build --out corpus16 --sample-rate 16000 --hours 0.5 --jobs 2 -q"
BLOCKS: dict[str, list[str]] = {
    "codecs": [f"{NC} codecs"],
    "toy": [f"{NC} experiment toy --no-progress"],
    "mdct-speech": [
        f"{NC} eval --codecs mdct,opus,amrwb --bitrates 8,16,24,32 --data examples/speech.flac "
        "--metrics pesq_wb,stoi,segsnr -q --out reports/example-speech",
    ],
    "mdct-music": [
        f"{NC} eval --codecs mdct,opus --bitrates 8,16,24,32 --data examples/music.flac "
        "--metrics pesq_wb,visqol_audio,segsnr -q --out reports/example-music",
    ],
    "eval-speech": [
        CORPUS,
        f"{NC} eval --codecs mdct,opus,amrwb --bitrates 9,16,24 --data corpus16/manifest.jsonl "
        "--sources speech-real,speech-tts --metrics pesq_wb,stoi,visqol_speech --jobs 2 -q --out reports/speech16",
    ],
    "eval-learned": [
        CORPUS,
        f"{NC} eval --codecs cq,cmrl,lpc-cmrl,amrwb,opus,mdct --bitrates 9,16,20,24 --data corpus16/manifest.jsonl "
        "--sources speech-real,speech-tts --metrics pesq_wb,stoi,visqol_speech --jobs 2 -q --out reports/speech16-learned",
    ],
    "rate-learned": [".venv/bin/python scripts/split_bitrate.py reports/speech16-learned --codecs cq,cmrl,lpc-cmrl,amrwb,opus"],
    "cascade-coders": [".venv/bin/python bench/bench_cascade_coders.py --data examples/speech.flac"],
    "listen-demo": [
        "rm -rf reports/listen-demo",
        f"{NC} listen prepare --codecs mdct:16,opus:16,amrwb:15.85,mdct:8 --items examples --group-by item "
        "--raters 16 --title 'Simulated raters (pipeline demo)' --out reports/listen-demo -q",
        ".venv/bin/python scripts/listen_demo.py reports/listen-demo --careless 2",
        f"{NC} listen results reports/listen-demo --figure docs/img/listen-results.png",
    ],
    "samplernn-speed": [".venv/bin/python bench/bench_samplernn.py --seconds 4 --widths 32,64,128 --repeat 2"],
    "fig6c": [".venv/bin/python scripts/fig6c_samplernn.py --manifest corpus16/manifest.jsonl --files 8 --seconds 4 "
              "--out docs/figures/fig6c_samplernn.png"],
    "eval-gen": [
        CORPUS,
        f"{NC} eval --codecs mdct-gen,mdct,opus,amrwb --bitrates 16 --data corpus16/manifest.jsonl "
        "--sources speech-real,speech-tts --metrics pesq_wb,visqol_speech,dnsmos_ovrl,twof --limit 8 --jobs 2 -q "
        "--out reports/speech16-gen",
    ],
    "eval-encodec-speech": [
        CORPUS,
        f"{NC} eval --codecs encodec-24k,opus --bitrates 1.5,3,6,12,24 --data corpus16/manifest.jsonl "
        "--sources speech-real,speech-tts --metrics pesq_wb,stoi,visqol_speech --jobs 2 -q --out reports/speech16-encodec",
    ],
    "eval-encodec-music": [
        CORPUS,
        f"{NC} eval --codecs encodec-24k,opus --bitrates 1.5,3,6,12,24 --data corpus16/manifest.jsonl "
        "--sources music-real,music-rendered --metrics visqol_audio,mel_distance,snr --jobs 2 -q --out reports/music16-encodec",
    ],
    "encodec-bench": [".venv/bin/python bench/bench_encodec.py --seconds 10 --kbps 6"],
    "perceptual-table1": [
        CORPUS,
        ".venv/bin/python scripts/byun_table1.py --data corpus16/manifest.jsonl --split test --sources speech-real,speech-tts",
    ],
    "rate-perceptual": [
        CORPUS,
        ".venv/bin/python scripts/byun_rates.py --data corpus16/manifest.jsonl --split test --sources speech-real,speech-tts "
        "--pesq",
    ],
    "eval-perceptual": [
        CORPUS,
        f"{NC} eval --codecs perceptual-fem,perceptual-hpm,amrwb,opus,cmrl,cq --bitrates 9,13,16,20,24 "
        "--data corpus16/manifest.jsonl "
        "--sources speech-real,speech-tts --metrics snr,pesq_wb,visqol_speech,twof --jobs 2 -q --out reports/speech16-perceptual",
    ],
    "long-input-mdct": [".venv/bin/python bench/bench_long_input.py --seconds 3600 --codecs mdct"],
    "long-input": [".venv/bin/python bench/bench_long_input.py --seconds 3600 --codecs pcm opus amrwb speex codec2 lc3 mp3 aac"],
    "long-input-learned": [".venv/bin/python bench/bench_long_input.py --seconds 120 --codecs cq cmrl"],
    "threads": [".venv/bin/python bench/bench_threads.py"],
    "eval-music": [
        CORPUS,
        f"{NC} eval --codecs mdct,opus,aac --bitrates 16,24,32 --data corpus16/manifest.jsonl "
        "--sources music-real,music-rendered --metrics visqol_audio,mel_distance,snr --jobs 2 -q --out reports/music16",
    ],
}


def run_block(name: str) -> str:
    out = ""
    for cmd in BLOCKS[name]:
        print(f"$ {cmd}", file=sys.stderr)
        proc = subprocess.run(cmd, shell=True, cwd=ROOT, capture_output=True, text=True)
        if proc.returncode != 0:
            sys.exit(f"command failed ({proc.returncode}): {cmd}\n{proc.stderr}")
        out = proc.stdout
    shown = "\n".join(cmd.replace(".venv/bin/", "") for cmd in BLOCKS[name])
    body = out.strip()
    if not body.startswith("|"):
        body = f"```\n{body}\n```"
    return f"```sh\n{shown}\n```\n\n{body}\n"


def main(argv: list[str]) -> int:
    names = argv or list(BLOCKS)
    readme = ROOT / "README.md"
    text = readme.read_text()
    for name in names:
        if name not in BLOCKS:
            sys.exit(f"unknown block {name!r} (known: {', '.join(BLOCKS)})")
        pattern = re.compile(rf"(<!-- result:{re.escape(name)} -->\n).*?(<!-- /result:{re.escape(name)} -->)", re.S)
        if not pattern.search(text):
            print(f"README has no block {name!r}; skipped", file=sys.stderr)
            continue
        block = run_block(name)
        text = pattern.sub(lambda m: m.group(1) + block + m.group(2), text)
        readme.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
