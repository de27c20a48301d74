"""The ``neurocodec`` command line.

Exit status: 0 on success, 2 for anything the user did wrong or bad input (one line on
stderr: ``neurocodec: error: ...``), 1 for internal bugs (``--debug`` shows the traceback).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
import traceback
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Sequence

from . import __version__
from .errors import UserError

PROG = "neurocodec"


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose usage errors are one line and raise instead of exiting."""

    def error(self, message: str):  # noqa: D401 - argparse API
        raise UserError(f"{message} (see '{self.prog} --help')")


def _say(args, msg: str) -> None:
    if not getattr(args, "quiet", False):
        print(msg, file=sys.stderr)


# -- encode / decode / info / codecs ------------------------------------------------------

#: torch threads of the learned codecs unless --threads says otherwise (bench/bench_threads.py)
DEFAULT_THREADS = 1


def _apply_threads(args) -> None:
    """Set torch's thread count for the learned codecs (only when torch is in use)."""
    n = getattr(args, "threads", None)
    n = DEFAULT_THREADS if n is None else n
    if "torch" in sys.modules and n > 0:  # 0: torch's own default (one thread per core)
        sys.modules["torch"].set_num_threads(int(n))


def _raw_format(args):
    from .fileio import RawFormat

    if args.raw_format is None:
        if getattr(args, "raw_rate", None) is not None or getattr(args, "raw_channels", None) is not None:
            raise UserError("--raw-rate/--raw-channels need --raw-format")
        return None
    return RawFormat(args.raw_format, getattr(args, "raw_rate", None) or 16000, getattr(args, "raw_channels", None) or 1)


def cmd_encode(args) -> int:
    from . import api, fileio, stream

    if args.json and args.output == fileio.STDIO:
        raise UserError("--json prints on stdout, which output '-' already uses")
    fileio.check_output(args.output, (args.input,))
    codec = api.load(args.codec)
    _apply_threads(args)
    raw = _raw_format(args)
    t0 = time.perf_counter()
    src = fileio.open_audio_source(args.input, raw)
    try:
        total = src.num_samples / src.sample_rate if src.num_samples is not None else None
        bar = fileio.Progress(total, f"encode {codec.name}", args.quiet)
        with fileio.open_output(args.output, (args.input,)) as f:
            enc = stream.Encoder(codec.model, f, src.sample_rate, src.channels, src.num_samples,
                                 args.bitrate, downmix=args.channels == 1)
            for block in src.blocks(stream.BLOCK_SAMPLES):
                enc.write(block)
                bar.update(block.shape[1] / src.sample_rate)
            res = enc.close()
        bar.close()
    finally:
        src.close()
    elapsed = time.perf_counter() - t0
    h = res.header
    if args.json:
        print(json.dumps({"codec": h.codec_id, "format_version": h.format_version, "sample_rate": h.sample_rate,
                          "channels": h.channels, "num_samples": h.num_samples, "duration_s": h.duration,
                          "nominal_kbps": h.bitrate_bps / 1000, "file_bytes": res.num_bytes,
                          "measured_kbps": res.measured_kbps, "output": str(args.output),
                          "encode_seconds": elapsed}))
    else:
        _say(args, f"{h.codec_id}: {args.input} -> {args.output}  {h.duration:.2f} s, {h.channels} ch, "
                   f"{res.measured_kbps:.2f} kbps measured (nominal {h.bitrate_bps / 1000:g}), "
                   f"{res.num_bytes} bytes, {elapsed:.2f} s")
    return 0


def cmd_decode(args) -> int:
    from . import fileio, stream
    from .bitstream import StreamReader

    raw = _raw_format(args)
    fileio.check_output(args.output, (args.input,))
    if raw is None:
        fileio.audio_format_for(args.output)
    t0 = time.perf_counter()
    with fileio.open_input(args.input) as fin:
        reader = StreamReader(fin)
        h = reader.header
        bar = fileio.Progress(None if h.length_at_end else h.duration, f"decode {h.codec_id}", args.quiet)
        with fileio.open_output(args.output, (args.input,)) as fout:
            options = {k: getattr(args, k) for k in ("seed", "mean") if getattr(args, k, None) is not None}
            model = None
            if args.decode_codec:
                from . import api
                model = api.load(args.decode_codec).model
            dec = stream.Decoder(reader, args.sample_rate, model=model, progress=bar.update, options=options)
            _apply_threads(args)
            sink = fileio.open_audio_sink(fout, args.output, dec.out_rate, dec.channels, raw)
            try:
                h = dec.run(sink.write)
            except BaseException:
                sink.abandon()
                raise
            sink.close()
        bar.close()
    _say(args, f"{args.input} -> {args.output}  {h.duration:.2f} s, {h.channels} ch, {dec.out_rate} Hz, "
               f"{time.perf_counter() - t0:.2f} s")
    return 0


def cmd_info(args) -> int:
    from . import api, fileio

    with fileio.open_input(args.input) as f:
        inf = api.info(f)
    if args.json:
        print(json.dumps(asdict(inf)))
        return 0
    rows = [
        ("codec", f"{inf.codec} (version {inf.codec_version}, config {inf.config_hash})"),
        ("format", f"ncdc v{inf.format_version}" + (f", {inf.num_segments} segments" if inf.num_segments else "")),
        ("sample rate", f"{inf.sample_rate} Hz (codec runs at {inf.codec_sample_rate} Hz)"),
        ("channels", str(inf.channels)),
        ("duration", f"{inf.duration_s:.3f} s ({inf.num_samples} samples)"),
        ("bitrate", f"{inf.measured_kbps:.2f} kbps measured from {inf.file_bytes} bytes (nominal {inf.nominal_kbps:g})"),
        ("chunks", f"{inf.num_chunks} ({inf.payload_bytes} payload bytes)"),
    ]
    for k, v in rows:
        print(f"{k:<12} {v}")
    return 0


def cmd_codecs(args) -> int:
    from .codecs import registry

    rows = []
    for entry in registry.entries():
        cid = entry.codec_id
        try:
            m = entry.create()
            rows.append({
                "codec": cid, "sample_rate": m.sample_rate, "bandwidth_hz": float(m.audio_bandwidth_hz),
                "bitrates_kbps": m.bitrates.describe(), "default_kbps": m.bitrates.default,
                "bitrate_unit": "kbps per channel (--bitrate is the total over all channels)",
                "parameters": m.num_parameters(),
                "weights": ("shipped" if m.has_trained_weights() else "missing") if m.learned else "n/a",
                "description": entry.summary, "available": True,
            })
        except UserError as e:  # e.g. a baseline whose system library is missing
            rows.append({"codec": cid, "sample_rate": None, "bandwidth_hz": None, "bitrates_kbps": "",
                         "default_kbps": None, "parameters": None, "weights": "", "description": entry.summary,
                         "available": False, "reason": str(e)})
    if args.json:
        print(json.dumps(rows))
        return 0
    w = max([len("codec")] + [len(r["codec"]) for r in rows])
    print(f"{'codec':<{w}} {'rate':>6} {'band':>8} {'kbps/channel':<22} {'params':>10} {'weights':<8} description")
    for r in rows:
        if not r["available"]:
            print(f"{r['codec']:<{w}} {'-':>6} {'-':>8} {'unavailable':<22} {'-':>10} {'-':<8} {r['reason']}")
            continue
        params = f"{r['parameters']:,}" if r["parameters"] else "0"
        band = f"{r['bandwidth_hz'] / 1000:g} kHz"
        print(f"{r['codec']:<{w}} {r['sample_rate']:>6} {band:>8} {r['bitrates_kbps']:<22} {params:>10} {r['weights']:<8} "
              f"{r['description']}")
    print("rate: the codec's internal sample rate (Hz; input is resampled to it); band: highest frequency coded; "
          "kbps/channel: the rates of one channel (--bitrate is the total over all channels)")
    return 0


def cmd_demo(args) -> int:
    from . import api, audio, fileio

    src = Path(args.input) if args.input else Path(__file__).resolve().parents[2] / "examples" / "speech.flac"
    out = Path(args.out)
    codec = api.load(args.codec)
    _apply_threads(args)
    out.mkdir(parents=True, exist_ok=True)
    wav, sr = audio.read_audio(src)
    t0 = time.perf_counter()
    data = codec.compress(wav, sr, bitrate=args.bitrate)
    t_enc = time.perf_counter() - t0
    enc_path = out / f"{src.stem}.{codec.name}.ncdc"
    dec_path = out / f"{src.stem}.{codec.name}.wav"
    fileio.atomic_write_bytes(enc_path, data)
    t0 = time.perf_counter()
    rec, rsr = api.decompress(enc_path.read_bytes())
    t_dec = time.perf_counter() - t0
    audio.write_audio(dec_path, rec, rsr)
    inf = api.info(data)
    try:
        from .eval.metrics import compute_metrics

        report = compute_metrics(wav.mean(0), rec.mean(0), sr, ["pesq_wb"])
        quality = f"{report.values['pesq_wb']:.2f}"
    except Exception as e:  # metric failure must not hide the round trip
        quality = f"n/a ({e})"
    print(f"codec      {inf.codec} (nominal {inf.nominal_kbps:g} kbps)")
    print(f"input      {src}  ({inf.duration_s:.2f} s, {inf.channels} ch, {inf.sample_rate} Hz)")
    print(f"bitrate    {inf.measured_kbps:.2f} kbps measured from {inf.file_bytes} bytes")
    print(f"PESQ-WB    {quality}")
    print(f"speed      encode {inf.duration_s / t_enc:.1f}x, decode {inf.duration_s / t_dec:.1f}x real time")
    print(f"files      {enc_path}  {dec_path}")
    return 0


# -- parser ---------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description="Compress audio into .ncdc bitstreams with learned and classic codecs.")
    p.add_argument("--version", action="version", version=f"neurocodec {__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    e = sub.add_parser(
        "encode", help="compress an audio file into a .ncdc stream",
        description="Compress audio into a .ncdc stream, block by block in bounded memory. '-' as INPUT reads "
                    "stdin (WAV, or headerless PCM with --raw-format), '-' as OUTPUT writes stdout: "
                    "'arecord -f S16_LE -r 16000 | neurocodec encode - - | neurocodec decode - - | aplay'. "
                    "A regular output file is written under a temporary name and renamed when complete; "
                    "FIFOs and devices are written through; the input itself is never overwritten.")
    e.add_argument("input", help="audio file (wav, flac, ogg, mp3, ...; any rate and channel count) or '-' for stdin")
    e.add_argument("output", help="output .ncdc file or '-' for stdout")
    e.add_argument("--codec", default=None, help="codec id (see 'neurocodec codecs'; default mdct)")
    e.add_argument("--bitrate", type=float, default=None,
                   help="target bitrate in kbps, the TOTAL over all channels (a stereo file at 32 codes each channel "
                        "at 16; each channel's share must be a rate the codec supports, see 'neurocodec codecs'); "
                        "default: the codec's default rate for every channel. The whole file, header included, "
                        "lands on it for codecs with file-level rate control (mdct, cq, cmrl)")
    e.add_argument("--channels", type=int, choices=[1], default=None,
                   help="1 = downmix to mono before coding (default: code every channel)")
    _add_raw_arguments(e, rate=True)
    e.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    _add_common(e)
    e.set_defaults(func=cmd_encode)

    d = sub.add_parser(
        "decode", help="decode a .ncdc stream into an audio file",
        description="Decode a .ncdc stream, writing audio as it is decoded. '-' as INPUT reads the stream from "
                    "stdin, '-' as OUTPUT writes WAV (or raw PCM with --raw-format) to stdout.")
    d.add_argument("input", help=".ncdc file or '-' for stdin")
    d.add_argument("output", help="output audio file (.wav or .flac) or '-' for WAV on stdout")
    d.add_argument("--sample-rate", type=int, default=None, help="output rate (default: the original rate)")
    d.add_argument("--codec", dest="decode_codec", default=None,
                   help="decode with this codec instead of the stream's (e.g. mdct-gen for an mdct stream)")
    d.add_argument("--seed", type=int, default=None, help="generative decoders: random seed (default 0)")
    d.add_argument("--mean", type=int, default=None, help="generative decoders: output the mean of N realizations")
    _add_raw_arguments(d, rate=False)
    _add_common(d)
    d.set_defaults(func=cmd_decode)

    i = sub.add_parser("info", help="describe a .ncdc stream")
    i.add_argument("input", help=".ncdc file or '-' for stdin")
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=cmd_info)

    c = sub.add_parser("codecs", help="list the registered codecs")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_codecs)

    m = sub.add_parser("demo", help="round-trip an example file and report bitrate and PESQ-WB")
    m.add_argument("--codec", default=None)
    m.add_argument("--bitrate", type=float, default=None, help="total bitrate in kbps over all channels")
    m.add_argument("--input", default=None, help="audio file (default: examples/speech.flac)")
    m.add_argument("--out", default="demo-out", help="output folder (default: demo-out)")
    m.add_argument("--threads", type=int, default=None, help=f"torch threads (default {DEFAULT_THREADS})")
    m.set_defaults(func=cmd_demo)

    for add in _extensions():
        add(sub)
    return p


def _add_raw_arguments(p: argparse.ArgumentParser, rate: bool) -> None:
    from .fileio import RAW_FORMATS

    what = "read headerless PCM" if rate else "write headerless PCM"
    p.add_argument("--raw-format", choices=sorted(RAW_FORMATS), default=None,
                   help=f"{what} in this sample format (interleaved channels) instead of "
                        f"{'an audio file / WAV on stdin' if rate else 'WAV/FLAC'}")
    if rate:
        p.add_argument("--raw-rate", type=int, default=None, help="sample rate of raw input (default 16000)")
        p.add_argument("--raw-channels", type=int, default=None, help="channels of raw input (default 1)")


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=int, default=None,
                   help=f"torch threads of the learned codecs (default {DEFAULT_THREADS}; 0 = torch's default, "
                        "one per core; bench/bench_threads.py measures both)")
    p.add_argument("-q", "--quiet", action="store_true", help="no summary line and no progress bar on stderr")


def _extensions() -> list[Callable]:
    """Sub-command groups that live in the upper layers (evaluation, data, training, experiments)."""
    from .data.commands import add_data_parser
    from .eval.command import add_eval_parser
    from .codecs.encodec_import import add_import_parser
    from .listen.cli import add_listen_parser
    from .train.cli import add_cli as add_train_parsers

    return [add_data_parser, add_eval_parser, add_train_parsers, _add_experiment_parser, add_listen_parser,
            add_import_parser]


def _add_experiment_parser(sub) -> None:
    from .experiments import toy

    p = sub.add_parser("experiment", help="reproduce experiments of the papers")
    exp = p.add_subparsers(dest="experiment", metavar="EXPERIMENT", parser_class=_Parser, required=True)
    t = exp.add_parser("toy", help="fejgin2020 §2.2 toy example (Table 1)")
    toy.add_arguments(t)
    t.set_defaults(func=toy.run_from_args)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings as one line on stderr (``neurocodec: warning: ...``)."""
    print(f"{PROG}: warning: {message}", file=file or sys.stderr)


def _terminated(signum, frame):
    """SIGTERM unwinds like an exception, so that temporary outputs are removed."""
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    warnings.showwarning = _show_warning
    try:
        previous = signal.signal(signal.SIGTERM, _terminated)
    except ValueError:  # not the main thread
        previous = None
    try:
        return _main(argv, debug)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _main(argv: list[str], debug: bool) -> int:
    try:
        args = build_parser().parse_args(argv)
        if getattr(args, "codec", "") is None:
            from .api import DEFAULT_CODEC

            args.codec = DEFAULT_CODEC
        if not getattr(args, "func", None):
            build_parser().print_help(sys.stderr)
            return 2
        return int(args.func(args) or 0)
    except UserError as e:
        if debug:
            traceback.print_exc()
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as e:  # an internal bug
        if debug:
            traceback.print_exc()
        print(f"{PROG}: internal error: {type(e).__name__}: {e} (run with --debug for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
