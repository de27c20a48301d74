"""Peak memory and speed of coding a long input through the CLI, per codec.

For every codec: ``neurocodec encode LONG.wav OUT.ncdc`` and ``neurocodec decode OUT.ncdc
OUT.wav`` each run in a fresh process; the script prints the process's peak resident memory
(``ru_maxrss`` from ``wait4``) and the speed as a multiple of real time (audio seconds per
wall-clock second).  The input is ``examples/speech.flac`` repeated to the requested length
(16 kHz mono, 16-bit WAV on disk).  Goal (issue 11): an hour of 16 kHz audio in under 500 MB.

    python bench/bench_long_input.py                      # an hour, every available codec
    python bench/bench_long_input.py --seconds 300 --codecs mdct cq --threads 1
    python bench/bench_long_input.py --pipe               # encode stdin -> stdout, decode stdin -> stdout
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]


def make_input(path: Path, seconds: float) -> None:
    """Write ``seconds`` of the example speech, repeated, as 16 kHz 16-bit mono WAV (block by block)."""
    x, sr = sf.read(ROOT / "examples" / "speech.flac", dtype="int16", always_2d=True)
    assert sr == 16000
    x = x[:, 0]
    total = int(seconds * sr)
    with sf.SoundFile(path, "w", samplerate=sr, channels=1, subtype="PCM_16") as f:
        done = 0
        while done < total:
            n = min(x.size, total - done)
            f.write(x[:n])
            done += n


def run(cmd: list[str], stdin=None, stdout=None) -> tuple[float, float, int]:
    """Wall seconds, peak RSS in MB and exit status of ``cmd``."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=stdin, stdout=stdout, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    err = proc.stderr.read().decode(errors="replace").strip()
    proc.stderr.close()
    code = os.waitstatus_to_exitcode(status)
    if code:
        print(f"  failed ({code}): {err.splitlines()[-1] if err else ''}", file=sys.stderr)
    return wall, usage.ru_maxrss / 1024, code


def available_codecs() -> list[str]:
    from neurocodec.codecs import registry
    from neurocodec.errors import UserError

    ids = []
    for cid in registry.codec_ids():
        try:
            registry.get_entry(cid).create()
            ids.append(cid)
        except UserError:
            pass
    return ids


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=3600.0, help="input length (default: an hour)")
    ap.add_argument("--codecs", nargs="*", default=None, help="codec ids (default: every available codec)")
    ap.add_argument("--threads", type=int, default=None, help="--threads of the CLI (default: the CLI's default)")
    ap.add_argument("--pipe", action="store_true", help="read stdin and write stdout instead of files")
    ap.add_argument("--workdir", default=None, help="where the long WAV and outputs go (default: a temp dir)")
    args = ap.parse_args()
    codecs = args.codecs or available_codecs()
    tmp = Path(args.workdir or tempfile.mkdtemp(prefix="nc-long-"))
    tmp.mkdir(parents=True, exist_ok=True)
    wav = tmp / f"long-{int(args.seconds)}s.wav"
    if not wav.exists():
        make_input(wav, args.seconds)
    cli = [sys.executable, "-m", "neurocodec"]
    extra = ["-q"] + ([] if args.threads is None else ["--threads", str(args.threads)])
    print(f"input: {args.seconds:g} s of 16 kHz mono ({wav.stat().st_size / 1e6:.0f} MB WAV); "
          f"{'pipes' if args.pipe else 'files'}; threads {args.threads if args.threads is not None else 'default'}; "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    print(f"{'codec':<8} {'enc MB':>8} {'enc xRT':>8} {'dec MB':>8} {'dec xRT':>8} {'kbps':>7}")
    for cid in codecs:
        enc_path, dec_path = tmp / f"{cid}.ncdc", tmp / f"{cid}.wav"
        if args.pipe:
            with open(wav, "rb") as fin, open(enc_path, "wb") as fout:
                et, em, ec = run(cli + ["encode", "-", "-", "--codec", cid] + extra, stdin=fin, stdout=fout)
            with open(enc_path, "rb") as fin, open(dec_path, "wb") as fout:
                dt, dm, dc = run(cli + ["decode", "-", "-"] + extra, stdin=fin, stdout=fout)
        else:
            et, em, ec = run(cli + ["encode", str(wav), str(enc_path), "--codec", cid] + extra)
            dt, dm, dc = run(cli + ["decode", str(enc_path), str(dec_path)] + extra) if not ec else (np.nan,) * 3
        kbps = 8 * enc_path.stat().st_size / args.seconds / 1000 if not ec else float("nan")
        print(f"{cid:<8} {em:>8.0f} {args.seconds / et:>8.1f} {dm:>8.0f} {args.seconds / dt:>8.1f} {kbps:>7.2f}",
              flush=True)
        for p in (enc_path, dec_path):
            p.unlink(missing_ok=True)
    if not args.workdir:
        wav.unlink()
        tmp.rmdir()


if __name__ == "__main__":
    main()
