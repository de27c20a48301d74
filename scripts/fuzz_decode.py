"""Coverage-guided fuzzing of the stream reader, ``info`` and the decoders (atheris / libFuzzer).

    pip install -e '.[fuzz]'
    python scripts/fuzz_decode.py --codec-family mdct --minutes 2
    python scripts/fuzz_decode.py --codec-family all --minutes 10    # split evenly over the families

Each family's corpus is seeded with valid streams of that codec (short mono and stereo clips at
several bitrates) and kept in ``fuzz-out/<family>/corpus``; inputs that make ``api.info`` or
``api.decompress`` raise anything but a :class:`~neurocodec.errors.UserError` (or run past the
time or memory limit) are written to ``fuzz-out/<family>/crash-*`` by libFuzzer, and the run
stops at the first one.  Copy a crashing input to ``tests/fuzz_cases/`` so that
``tests/test_fuzz_regressions.py`` keeps it fixed.

Every checksum of the container would stop almost every mutation at the header, so half of
the inputs (first byte odd) get their CRCs recomputed before decoding (:func:`fix_checksums`):
those reach the codec's payload parser with a mutated header or payload.  The other half are
decoded as they are, which exercises the container's own checks.

Not part of the test suite (it runs for minutes); atheris is in the ``fuzz`` extra.
"""

from __future__ import annotations

import argparse
import os
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: codec families with seed streams (``all`` runs every one for ``minutes / len(FAMILIES)``)
FAMILIES = ("mdct", "pcm", "cq", "cmrl", "opus", "amrwb", "codec2", "speex", "mp3", "lc3", "aac")
#: families whose decoders run neural networks (instrumented more narrowly, see _fuzz_one)
LEARNED = ("cq", "cmrl")
#: bitrates (total, kbps) of the seed streams of each family (None: the codec default)
SEED_RATES = {
    "mdct": (8.0, 16.0, 32.0), "pcm": (None,), "cq": (9.0, 16.0, 24.0), "cmrl": (8.85, 23.85),
    "opus": (6.0, 24.0), "amrwb": (6.6, 23.85), "codec2": (0.7, 3.2), "speex": (3.95, 23.8),
    "mp3": (8.0, 32.0), "lc3": (16.0, 64.0), "aac": (16.0, 32.0),
}

_U32 = struct.Struct(">I")
_FIXED_AFTER_ID = 2 + 4 + 4 + 4 + 1 + 8 + 8 + 4 + 2  # codec_version .. flags (container layout)


def fix_checksums(data: bytes) -> bytes:
    """Recompute the header CRC and every chunk CRC of a (possibly mutated) version-1 stream,
    walking its length fields as a reader would; bytes past a length that runs out are kept."""
    buf = bytearray(data)
    if len(buf) < 6:
        return bytes(buf)
    head_end = 6 + buf[5] + _FIXED_AFTER_ID
    if len(buf) < head_end + 4:
        return bytes(buf)
    buf[head_end:head_end + 4] = _U32.pack(zlib.crc32(bytes(buf[:head_end])) & 0xFFFFFFFF)
    pos, index = head_end + 4, 0
    while pos + 4 <= len(buf):
        (length,) = _U32.unpack_from(buf, pos)
        end = pos + 4 + length
        if end + 4 > len(buf):
            break
        crc = zlib.crc32(bytes(buf[pos + 4:end]), zlib.crc32(struct.pack(">II", index, length))) & 0xFFFFFFFF
        buf[end:end + 4] = _U32.pack(crc)
        pos, index = end + 4, index + 1
        if length == 0:
            break
    return bytes(buf)


def stream_of(data: bytes) -> bytes:
    """The stream a fuzz input stands for: its first byte picks whether the checksums of the
    rest are recomputed (odd) or not (even)."""
    if not data:
        return b""
    return fix_checksums(data[1:]) if data[0] & 1 else data[1:]


def seed_streams(family: str) -> list[bytes]:
    """Valid streams of ``family``: 0.35 s mono and 0.2 s stereo at each seed bitrate (a tone
    with noise at 16 kHz, a 44.1 kHz stereo clip so that the resampler runs too)."""
    import numpy as np

    import neurocodec

    rng = np.random.default_rng(7)
    t = np.arange(int(0.35 * 16000)) / 16000
    mono = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)[None]
    t2 = np.arange(int(0.2 * 44100)) / 44100
    stereo = np.stack([0.2 * np.sin(2 * np.pi * 300 * t2), 0.1 * rng.standard_normal(t2.size)]).astype(np.float32)
    codec = neurocodec.load(family)
    seeds = []
    for kbps in SEED_RATES[family]:
        seeds.append(codec.compress(mono, 16000, bitrate=kbps))
        seeds.append(codec.compress(stereo, 44100, bitrate=None if kbps is None else 2 * kbps))
    seeds.append(codec.compress(np.zeros((1, 4000), dtype=np.float32), 16000, bitrate=SEED_RATES[family][0]))
    return seeds


def _fuzz_one(family: str, out: Path, seconds: int, max_len: int) -> int:
    """Run libFuzzer on one family in this process (``--worker``); returns its exit status."""
    import atheris

    # Coverage callbacks make pure-Python loops ~100x slower: for the learned codecs (0.2 s per
    # decode uninstrumented) the entropy decoders and the network code run uninstrumented
    # (their payload parser, neurocodec.codecs.cascade_tables, is instrumented).
    include = ["neurocodec.api", "neurocodec.bitstream", "neurocodec.codecs"] if family in LEARNED else ["neurocodec"]
    with atheris.instrument_imports(include=include):
        import neurocodec
        from neurocodec import api
        from neurocodec.bitstream import unpack
        from neurocodec.errors import UserError

    import warnings

    import torch

    torch.set_num_threads(1)  # torch's default threads on a busy machine made 0.2 s decodes take 13 s
    warnings.simplefilter("ignore")
    corpus = out / family / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    if not any(corpus.iterdir()):
        for i, s in enumerate(seed_streams(family)):
            (corpus / f"seed-{i:02d}.ncdc").write_bytes(s)
    neurocodec.load(family)  # load weights / libraries once, outside the timed inputs

    codecs: dict[str, api.Codec] = {}

    def test_one_input(data: bytes) -> None:
        if not data:
            return
        stream = stream_of(data)
        try:
            api.info(stream)
        except UserError:
            return
        try:  # api.decompress, with the codec (and its weights) loaded once per id
            parsed = unpack(stream)
            cid = parsed.header.codec_id
            if cid not in codecs:
                codecs[cid] = api.load(cid)
            codecs[cid].decode_stream(parsed)
        except UserError:
            pass

    # a seed is the stream itself: prefix each seed with a mode byte on first use
    for p in corpus.iterdir():
        raw = p.read_bytes()
        if raw[:4] == b"NCDC":
            p.write_bytes(b"\x01" + raw)
    args = [sys.argv[0], str(corpus), f"-max_total_time={seconds}", f"-max_len={max_len}", "-len_control=0", "-timeout=20",
            "-rss_limit_mb=3072", f"-artifact_prefix={out / family}/", "-print_final_stats=1"]
    atheris.Setup(args, test_one_input)
    atheris.Fuzz()
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--codec-family", default="all", help=f"one of {', '.join(FAMILIES)} or 'all'")
    ap.add_argument("--minutes", type=float, default=1.0, help="total fuzzing time (split over the families)")
    ap.add_argument("--out", default=str(ROOT / "fuzz-out"), help="corpus and crash folder")
    ap.add_argument("--max-len", type=int, default=16384, help="longest input in bytes")
    ap.add_argument("--save-case", nargs=2, metavar=("ARTIFACT", "NAME"),
                    help="write the stream of a crashing input to tests/fuzz_cases/NAME.ncdc and exit")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.save_case:
        artifact, name = args.save_case
        dest = ROOT / "tests" / "fuzz_cases" / f"{name}.ncdc"
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(stream_of(Path(artifact).read_bytes()))
        print(dest)
        return 0
    families = FAMILIES if args.codec_family == "all" else tuple(args.codec_family.split(","))
    for f in families:
        if f not in FAMILIES:
            ap.error(f"unknown codec family {f!r} (choose from {', '.join(FAMILIES)} or all)")
    out = Path(args.out)
    seconds = max(1, int(args.minutes * 60 / len(families)))
    if args.worker:
        return _fuzz_one(families[0], out, seconds, args.max_len)
    failed = []
    for f in families:
        t0 = time.time()
        # one process per family: libFuzzer exits the process when its time is up
        rc = subprocess.call([sys.executable, __file__, "--worker", "--codec-family", f, "--minutes",
                              str(seconds / 60), "--out", str(out), "--max-len", str(args.max_len)],
                             env={**os.environ, "PYTHONWARNINGS": "ignore"})
        crashes = sorted(p.name for p in (out / f).glob("crash-*")) + sorted(p.name for p in (out / f).glob("timeout-*"))
        crashes += sorted(p.name for p in (out / f).glob("oom-*"))
        print(f"fuzz_decode: {f}: {time.time() - t0:.0f} s, exit {rc}, "
              f"{len(list((out / f / 'corpus').iterdir()))} corpus inputs, findings: {crashes or 'none'}", flush=True)
        if rc != 0 or crashes:
            failed.append(f)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
