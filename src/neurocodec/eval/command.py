"""``neurocodec eval``: run the harness and write the whole report folder.

REPORT_DIR/results.jsonl  per-file results as they finish (resume log)
REPORT_DIR/results.csv    the same, flat
REPORT_DIR/summary.json   aggregates with 95% confidence intervals
REPORT_DIR/summary.md     the Markdown table (also printed)
REPORT_DIR/plots/*.png    rate-quality curves, one per metric
REPORT_DIR/spectrograms/  reference vs each codec for a few files
REPORT_DIR/audio/         reference and decoded audio of those files
REPORT_DIR/index.html     everything on one page, with audio players
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from .. import audio as audio_io
from ..codecs import registry
from .harness import DEFAULT_METRICS, find_items, parse_list, plan_conditions, run_evaluation


def add_eval_parser(sub) -> None:
    p = sub.add_parser("eval", help="evaluate codecs on a data set (rate-quality report)")
    p.add_argument("--codecs", required=True, help="comma-separated codec ids, e.g. mdct,opus,amrwb")
    p.add_argument("--bitrates", required=True, help="comma-separated kbps; ladder codecs use their nearest rate")
    p.add_argument("--data", required=True, help="manifest (JSONL/CSV), folder of audio files, or one audio file")
    p.add_argument("--split", default="test", help="manifest split to evaluate (default: test)")
    p.add_argument("--sources", default=None,
                   help="manifest sources to keep, e.g. speech-real,speech-tts (default: all)")
    p.add_argument("--out", required=True, help="report folder")
    p.add_argument("--metrics", default=",".join(DEFAULT_METRICS), help="comma-separated metric names")
    p.add_argument("--jobs", type=int, default=1, help="worker processes (each runs one torch thread)")
    p.add_argument("--limit", type=int, default=None, help="evaluate only the first N files")
    p.add_argument("--examples", type=int, default=3, help="files kept as audio and spectrograms in the report")
    p.add_argument("--json", action="store_true", help="print the summary as JSON instead of Markdown")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run_eval_command)


def run_eval_command(args) -> int:
    from .html import write_html
    from .plots import rate_quality_plot, spectrogram_comparison
    from .report import markdown_table, summarize, write_csv, write_json

    codecs = parse_list(args.codecs, "codec")
    for c in codecs:
        registry.get_entry(c)  # unknown ids fail before any work
    bitrates = parse_list(args.bitrates, "bitrate", float)
    metrics = parse_list(args.metrics, "metric")
    sources = parse_list(args.sources, "source") if args.sources else None
    items = find_items(args.data, split=args.split, limit=args.limit, sources=sources)
    conditions = plan_conditions(codecs, bitrates)
    out = Path(args.out)
    results = run_evaluation(conditions, items, out, metrics=metrics, jobs=max(1, args.jobs),
                             audio_examples=args.examples, progress=not args.quiet)

    models = {c: registry.create(c) for c in codecs}
    params = {(cond.codec, cond.bitrate): models[cond.codec].num_parameters_at(cond.bitrate) for cond in conditions}
    summaries = summarize(results, metrics, parameters=params)
    meta = {"command": "neurocodec " + " ".join(shlex.quote(a) for a in sys.argv[1:]), "data": str(args.data),
            "split": args.split, "sources": sources, "files": len(items), "metrics": metrics}
    write_csv(results, out / "results.csv")
    write_json(summaries, out / "summary.json", meta)
    table = markdown_table(summaries, metrics)
    (out / "summary.md").write_text(table)

    (out / "plots").mkdir(exist_ok=True)
    plots = {m: rate_quality_plot(summaries, m, out / "plots" / f"{m}.png") for m in metrics}

    # Audio and spectrograms for the example files, at the middle requested bitrate.
    example_keys = [it.key for it in items[: args.examples]]
    mid = sorted(bitrates)[len(bitrates) // 2]
    audio_links: dict[str, dict[str, str]] = {}
    spectros = []
    (out / "spectrograms").mkdir(exist_ok=True)
    by_item = {it.key: it for it in items}
    for key in example_keys:
        ref, sr = audio_io.read_audio(by_item[key].path)
        stem = Path(key).with_suffix("").as_posix().replace("/", "__")
        ref_path = out / "audio" / f"{stem}.reference.wav"
        if not ref_path.exists():
            audio_io.write_audio(ref_path, ref, sr)
        links = {"reference": str(ref_path)}
        decoded = {}
        for r in sorted((r for r in results if r.item == key and r.decoded_path), key=lambda r: (r.codec, r.bitrate)):
            links[f"{r.codec} {r.bitrate:g} kbps ({r.measured_kbps:.1f} measured)"] = r.decoded_path
            if r.requested == mid and Path(r.decoded_path).exists():
                d, _ = audio_io.read_audio(r.decoded_path)
                decoded[f"{r.codec} {r.bitrate:g} kbps"] = d[0]
        audio_links[key] = links
        if decoded:
            spectros.append(spectrogram_comparison(ref[0], decoded, sr, out / "spectrograms" / f"{stem}.png",
                                                   title=f"{key} at ~{mid:g} kbps"))
    page = write_html(out, summaries, metrics, plots, spectros, audio_links, meta)

    if args.json:
        print((out / "summary.json").read_text())
    else:
        print(table, end="")
        print(f"\nreport: {page}", file=sys.stderr)
    return 0
