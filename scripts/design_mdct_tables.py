#!/usr/bin/env python3
"""Design the Huffman tables of the ``mdct`` codec (fejgin2020 §3.1) on training audio.

What it does (see docs/mdct.md):

1. Decode the training audio with ffmpeg (G.722 -> float32, 16 kHz, mono).  Training audio is
   the *train* split of the project's data policy (``neurocodec.data.sources``): speech
   prompts of Allison Smith (``en_US_f_Allison``, ``es_MX_f_Allison``; every ``--speech-every``
   th file, non-speech prompts excluded) and the music-on-hold tracks ``macroform-cold_day``
   and ``reno_project-system``.  The sources of the test clips, ``en_US_f_Allison/demo-congrats``
   (examples/speech.flac) and ``macroform-the_simplicity`` (examples/music.flac), are excluded,
   and so are June's prompts and ``macroform-robot_dity`` (the project's test split) and
   ``manolo_camp-morning_coffee`` (valid).
2. Start from model tables (:func:`neurocodec.codecs.mdct.model_tables`: Laplacian lines,
   discrete-Laplacian envelope differences).
3. Iterate ``--iterations`` times: encode every file at every bitrate in ``--bitrates`` with
   the current tables, collect the symbol histograms (envelope differences, the rate
   parameter ``r = max i_env - i_offset``, every quantizer's symbols), and rebuild every code
   as a length-limited (``--max-length`` bits) canonical Huffman code with add-one smoothing
   (so every symbol stays codable).  Iterating matters because the rate control picks
   ``i_offset`` from the exact bit costs, which depend on the tables.
4. Write ``src/neurocodec/assets/mdct_tables.json`` (code lengths only, plus the config the
   tables belong to and a summary of the training run; no timestamps, so re-running the
   script on the same data reproduces the file byte for byte).

Run::

    .venv/bin/python scripts/design_mdct_tables.py            # about 6 minutes on one core

Trying other parameters (how the defaults were chosen; docs/mdct.md): ``--set`` overrides
``MdctConfig`` fields (JSON values; ``bands=N,W`` is ``design_band_edges(320, N, 16000,
min_width=W)``; ``step_1`` also recomputes the quantizer layout), ``--quick`` designs on a
small subset (every 30th prompt, 60 s per music track), and ``--evaluate`` prints PESQ-WB
(speech/music) on a development set that is in neither the training nor the test material
(6 en_US prompts, two 8 s excerpts of ``manolo_camp-morning_coffee``), for the config and for
every decoder-side ``--variant`` (e.g. ``noise_fill=0``)::

    .venv/bin/python scripts/design_mdct_tables.py --quick --iterations 2 --out /tmp/t.json \
        --set bands=20,8 --evaluate --variant noise_fill=0 --variant recon_offset=0
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from neurocodec.codecs.mdct import MdctCodec, MdctConfig, MdctTables, model_tables, symbol_counts, tables_path
from neurocodec.entropy.huffman import HuffmanCode

SOUNDS = Path("/usr/share/asterisk/sounds")
MOH = Path("/usr/share/asterisk/moh")
SPEECH_FOLDERS = ("en_US_f_Allison", "es_MX_f_Allison")
MUSIC_TRACKS = ("macroform-cold_day", "reno_project-system")
HELD_OUT = {SOUNDS / "en_US_f_Allison" / "demo-congrats.g722", MOH / "macroform-the_simplicity.g722"}
NON_SPEECH_STEMS = {"beep", "beeperr", "ascending-2tone", "descending-2tone", "tt-monkeys"}


def decode_g722(path: Path) -> np.ndarray:
    """Mono float32 16 kHz samples of a raw G.722 file (ffmpeg)."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        sys.exit("ffmpeg is not installed (apt-get install ffmpeg)")
    out = subprocess.run([ffmpeg, "-nostdin", "-v", "error", "-f", "g722", "-i", str(path), "-f", "f32le",
                          "-ac", "1", "-ar", "16000", "-"], capture_output=True, check=True).stdout
    return np.frombuffer(out, dtype="<f4").astype(np.float32)


def training_files(speech_every: int, music_seconds: float) -> list[tuple[str, Path, float]]:
    """``(kind, path, max_seconds)`` of the training set, deterministic order."""
    files: list[tuple[str, Path, float]] = []
    speech = []
    for folder in SPEECH_FOLDERS:
        for p in sorted((SOUNDS / folder).rglob("*.g722")):
            rel = p.relative_to(SOUNDS / folder)
            if p in HELD_OUT or p.stem in NON_SPEECH_STEMS or "silence" in rel.parts[:-1]:
                continue
            speech.append(p)
    files += [("speech", p, float("inf")) for p in speech[::speech_every]]
    files += [("music", MOH / f"{t}.g722", music_seconds) for t in MUSIC_TRACKS if MOH.joinpath(f"{t}.g722").exists()]
    if not speech:
        sys.exit(f"no training speech under {SOUNDS} (apt-get install asterisk-core-sounds-en-g722 "
                 "asterisk-core-sounds-es-g722)")
    return files


def build_tables(config: MdctConfig, counts: dict[str, np.ndarray], max_length: int) -> MdctTables:
    """Length-limited canonical Huffman codes (add-one smoothing) from symbol histograms."""
    def code(c):
        return HuffmanCode.from_frequencies(c, max_length=max_length, ensure_all=True)
    return MdctTables(code(counts["envelope"]), code(counts["offset"]),
                      tuple(code(counts[f"q{k}"]) for k in range(1, config.num_quantizers + 1)))


def collect(config: MdctConfig, tables: MdctTables, signals: list[np.ndarray],
            bitrates: list[float]) -> tuple[dict[str, np.ndarray], dict]:
    """Encode every signal at every bitrate; return summed histograms and bit statistics."""
    codec = MdctCodec(config, tables=tables)
    total: dict[str, np.ndarray] = {}
    frames = bits = side = 0
    for x in signals:
        for kbps in bitrates:
            a = codec.analyze(x[None, :], kbps)
            for k, v in symbol_counts(codec, a).items():
                total[k] = total.get(k, 0) + v
            frames += a.frame_bits.size
            bits += int(a.frame_bits.sum())
            side += int(codec._side_bits(a.envelope[0]).sum())
    stats = {"frames": frames, "mean_frame_bits": bits / max(frames, 1),
             "mean_envelope_bits": side / max(frames, 1)}
    return total, stats


def parse_overrides(items: list[str]) -> dict:
    """``KEY=VALUE`` strings -> MdctConfig overrides (see module docstring)."""
    from neurocodec.codecs.mdct import default_quantizer_layout
    from neurocodec.dsp.bands import design_band_edges

    over: dict = {}
    for item in items:
        key, _, value = item.partition("=")
        if key == "bands":
            n, w = (int(v) for v in value.split(","))
            over["band_edges"] = design_band_edges(320, n, 16000, min_width=w)
        else:
            try:
                over[key] = json.loads(value)
            except json.JSONDecodeError:
                over[key] = value
    if "step_1" in over and "quantizer_layout" not in over:
        over["quantizer_layout"] = default_quantizer_layout(over.get("num_quantizers", 32), over["step_1"])
    return over


def development_set() -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Speech and music for choosing parameters, disjoint from training and test material."""
    train = {p for _, p, _ in training_files(6, float("inf"))}
    prompts = [p for p in sorted((SOUNDS / "en_US_f_Allison").glob("*.g722"))
               if p not in train and p not in HELD_OUT and p.stat().st_size > 8000 * 3][::25][:6]
    speech = [decode_g722(p) for p in prompts]
    track = decode_g722(MOH / "manolo_camp-morning_coffee.g722")
    music = [track[16000 * 10:16000 * 18], track[16000 * 40:16000 * 48]]
    return speech, music


def evaluate(config: MdctConfig, tables: MdctTables, variants: dict[str, MdctConfig],
             bitrates: list[float]) -> None:
    """Print mean PESQ-WB (speech/music) of the development set per variant and bitrate."""
    from pesq import pesq

    speech, music = development_set()
    for name, cfg in variants.items():
        codec = MdctCodec(cfg, tables=tables)
        row = []
        for kbps in bitrates:
            scores = []
            for group in (speech, music):
                s = []
                for x in group:
                    enc = codec.compress(x[None], kbps)
                    y = codec.decompress(enc.chunks, 1, x.size, kbps)[0]
                    s.append(pesq(16000, x, y, "wb"))
                scores.append(np.mean(s))
            row.append(f"{kbps:g}: {scores[0]:.2f}/{scores[1]:.2f}")
        print(f"PESQ-WB speech/music [{name}] " + "  ".join(row), flush=True)


def entropy_bits(counts: np.ndarray) -> float:
    p = counts[counts > 0] / counts.sum()
    return float(-(counts[counts > 0] * np.log2(p)).sum())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--speech-every", type=int, default=6, help="use every n-th training prompt")
    ap.add_argument("--music-seconds", type=float, default=600.0, help="seconds used of every music track")
    ap.add_argument("--bitrates", default="8,12,16,24,32", help="kbps, comma-separated")
    ap.add_argument("--iterations", type=int, default=3)
    ap.add_argument("--max-length", type=int, default=15, help="longest codeword in bits")
    ap.add_argument("--quick", action="store_true", help="small subset (every 30th prompt, 60 s of music)")
    ap.add_argument("--out", type=Path, default=tables_path())
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="MdctConfig override")
    ap.add_argument("--evaluate", action="store_true", help="PESQ-WB on the development set afterwards")
    ap.add_argument("--variant", action="append", default=[], metavar="KEY=VALUE[,KEY=VALUE]",
                    help="decoder-side variant to evaluate as well (e.g. noise_fill=0)")
    ap.add_argument("--eval-bitrates", default="8,16,24,32")
    args = ap.parse_args(argv)
    if args.quick:
        args.speech_every, args.music_seconds = 30, 60.0
    bitrates = [float(b) for b in args.bitrates.split(",")]
    config = dataclasses.replace(MdctConfig(), **parse_overrides(args.set))
    if config != MdctConfig() and args.out == tables_path():
        sys.exit("refusing to overwrite the shipped tables with tables for a non-default config (use --out)")

    files = training_files(args.speech_every, args.music_seconds)
    signals, seconds = [], {"speech": 0.0, "music": 0.0}
    for kind, path, max_s in files:
        x = decode_g722(path)
        if np.isfinite(max_s):
            x = x[: int(max_s * 16000)]
        if x.size:
            signals.append(x)
            seconds[kind] += x.size / 16000
    print(f"training audio: {len(files)} files, speech {seconds['speech'] / 60:.1f} min, "
          f"music {seconds['music'] / 60:.1f} min; bitrates {bitrates}", flush=True)

    tables = model_tables(config)
    history = []
    for it in range(args.iterations):
        t0 = time.time()
        counts, stats = collect(config, tables, signals, bitrates)
        new = build_tables(config, counts, args.max_length)
        coded = sum(int(c.code_lengths() @ counts[k])
                    for k, c in [("envelope", new.envelope), ("offset", new.offset)]
                    + [(f"q{i + 1}", q) for i, q in enumerate(new.quantizers)])
        ent = sum(entropy_bits(v) for v in counts.values())
        stats.update(iteration=it + 1, huffman_over_entropy=round(coded / ent, 4))
        history.append({k: (round(v, 2) if isinstance(v, float) else v) for k, v in stats.items()})
        print(f"iteration {it + 1}: mean frame bits {stats['mean_frame_bits']:.1f}, envelope bits "
              f"{stats['mean_envelope_bits']:.1f}, Huffman/entropy {coded / ent:.4f} ({time.time() - t0:.0f} s)",
              flush=True)
        tables = new

    doc = {
        "format": "neurocodec-mdct-tables",
        "version": 1,
        "config": config.table_key(),
        "tables": tables.to_dict(),
        "training": {
            "script": "scripts/design_mdct_tables.py",
            "speech": [f"{d} (every {args.speech_every}th prompt)" for d in SPEECH_FOLDERS],
            "music": list(MUSIC_TRACKS),
            "excluded": sorted(str(p) for p in HELD_OUT),
            "files": len(files),
            "speech_minutes": round(seconds["speech"] / 60, 2),
            "music_minutes": round(seconds["music"] / 60, 2),
            "bitrates_kbps": bitrates,
            "max_code_length": args.max_length,
            "iterations": history,
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(doc, indent=1, sort_keys=True)
    # one line per code-length list
    text = re.sub(r"\[[\d,\s]+\]", lambda mt: re.sub(r"\s+", "", mt.group(0)), text)
    args.out.write_text(text + "\n")
    print(f"wrote {args.out}")
    if args.evaluate:
        variants = {"config": config}
        for v in args.variant:
            variants[v] = dataclasses.replace(config, **parse_overrides(v.split(",")))
        evaluate(config, tables, variants, [float(b) for b in args.eval_bitrates.split(",")])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
