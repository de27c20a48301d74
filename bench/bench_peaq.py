"""PEAQ basic / 2f-model: speed, and optional cross-checks.

    python bench/bench_peaq.py                      # seconds per call for 8 s signals
    python bench/bench_peaq.py --codecs             # ODG and 2f of real MP3 / Opus encodes (ffmpeg)
    python bench/bench_peaq.py --gstpeaq DIR        # compare MOVs/ODG with a GstPEAQ build in DIR

``DIR`` holds GstPEAQ's ``peaq`` command and ``libgstpeaq.so`` (see docs/peaq.md for how it
was built); GStreamer's wavparse plugin must be installed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.signal as ss
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from neurocodec.audio import read_audio, resample  # noqa: E402
from neurocodec.eval.align import align  # noqa: E402
from neurocodec.eval.peaq import MOV_NAMES, peaq  # noqa: E402

SR = 48000


def wideband_item(seconds: float, seed: int = 1234) -> np.ndarray:
    """Harmonic complex on 220 Hz with an AM envelope plus noise low-passed at 18 kHz."""
    t = np.arange(int(seconds * SR)) / SR
    rng = np.random.default_rng(seed)
    phases = rng.uniform(0, 2 * np.pi, 90)
    tones = sum(0.04 / np.sqrt(h) * np.sin(2 * np.pi * 220 * h * t + phases[h]) for h in range(1, 87))
    envelope = 0.6 + 0.4 * np.sin(2 * np.pi * 1.3 * t)
    noise = ss.sosfilt(ss.butter(10, 18000 / (SR / 2), output="sos"), 0.02 * rng.standard_normal(len(t)))
    return (tones * envelope + noise).astype(np.float32)


def add_noise(x: np.ndarray, snr_db: float, seed: int = 5) -> np.ndarray:
    n = np.random.default_rng(seed).standard_normal(len(x))
    n *= np.sqrt(np.mean(np.asarray(x, np.float64) ** 2) / np.mean(n ** 2)) * 10 ** (-snr_db / 20)
    return (x + n).astype(np.float32)


def example(name: str) -> tuple[np.ndarray, int]:
    audio, sr = read_audio(ROOT / "examples" / name)
    return audio.mean(axis=0), sr


def bench_speed(repeats: int) -> None:
    print("== speed (median of %d calls, this machine)" % repeats)
    x48 = wideband_item(8.0)
    y48 = add_noise(x48, 20)
    speech, sr_speech = example("speech.flac")
    cases = [("8 s at 48 kHz (synthetic, 20 dB SNR noise)", x48, y48, SR),
             (f"8 s at {sr_speech} Hz (examples/speech.flac, resampled)", speech,
              add_noise(speech, 20), sr_speech)]
    peaq(x48[:SR], y48[:SR], SR)  # warm the cached tables
    for label, ref, deg, sr in cases:
        wall, cpu = [], []
        for _ in range(repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            res = peaq(ref, deg, sr)
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        print(f"{label:55s} {np.median(wall):6.3f} s wall, {np.median(cpu):6.3f} s CPU"
              f"   (ODG {res.odg:+.3f}, 2f {res.twof:5.1f})")


def _ffmpeg_roundtrip(x: np.ndarray, sr: int, args: list[str], ext: str) -> np.ndarray:
    with tempfile.TemporaryDirectory() as tmp:
        src, enc, dec = Path(tmp) / "in.wav", Path(tmp) / f"enc.{ext}", Path(tmp) / "out.wav"
        sf.write(src, x, sr, subtype="PCM_16")
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(src), *args, str(enc)], check=True)
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(enc), "-ar", str(sr),
                        "-c:a", "pcm_f32le", str(dec)], check=True)
        y, _ = sf.read(dec, dtype="float32", always_2d=True)
    return y.mean(axis=1)


def bench_codecs() -> None:
    if shutil.which("ffmpeg") is None:
        print("== codecs: ffmpeg not installed, skipped")
        return
    item = wideband_item(8.0)
    print("== MP3 (libmp3lame CBR) on the 8 s synthetic 48 kHz wideband item")
    for kbps in (320, 192, 128, 96, 64, 48, 32):
        y = _ffmpeg_roundtrip(item, SR, ["-c:a", "libmp3lame", "-b:a", f"{kbps}k"], "mp3")
        a = align(item, y, SR)
        res = peaq(a.ref, a.deg, SR)
        print(f"  {kbps:4d} kbps  delay {a.delay_samples:5d}  ODG {res.odg:+.3f}  DI {res.di:+.3f}  2f {res.twof:5.1f}")
    speech, sr_speech = example("speech.flac")
    print(f"== Opus (libopus VBR) on examples/speech.flac ({sr_speech} Hz), as in byun2023's rate range")
    for kbps in (9, 13, 16, 20, 24):
        y = _ffmpeg_roundtrip(speech, sr_speech, ["-c:a", "libopus", "-b:a", f"{kbps}k"], "opus")
        a = align(speech, y, sr_speech)
        res = peaq(a.ref, a.deg, sr_speech)
        print(f"  {kbps:4d} kbps  delay {a.delay_samples:5d}  ODG {res.odg:+.3f}  2f {res.twof:5.1f}  "
              f"AvgModDiff1 {res.movs['AvgModDiff1_B']:6.2f}  ADB {res.movs['ADB_B']:+.3f}")


def _gstpeaq(build: Path, ref: np.ndarray, deg: np.ndarray) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        r, t = Path(tmp) / "ref.wav", Path(tmp) / "test.wav"
        sf.write(r, ref, SR, subtype="FLOAT")
        sf.write(t, deg, SR, subtype="FLOAT")
        out = subprocess.run([str(build / "peaq"), str(r), str(t)], capture_output=True, text=True,
                             env=dict(os.environ, GST_PLUGIN_PATH=str(build))).stdout
    vals: dict[str, float] = {}
    for line in out.splitlines():
        if ":" in line:
            key, _, value = line.partition(":")
            vals[key.strip().replace(" ", "")] = float(value)
    return vals


def bench_gstpeaq(build: Path) -> None:
    x = wideband_item(4.0)
    speech, sr_speech = example("speech.flac")
    speech48 = resample(speech[None], sr_speech, SR)[0]
    sos8k = ss.butter(8, 8000 / (SR / 2), output="sos")
    cases = {
        "identical": (x, x.copy()),
        "noise 40 dB": (x, add_noise(x, 40)),
        "noise 20 dB": (x, add_noise(x, 20)),
        "noise 10 dB": (x, add_noise(x, 10)),
        "low-pass 8 kHz": (x, ss.sosfiltfilt(sos8k, x).astype(np.float32)),
        "5-bit quantiser": (x, (np.round(x * 16.0) / 16).astype(np.float32)),
        "gain -1 dB": (x, (x * 10 ** (-1 / 20)).astype(np.float32)),
        "speech 16k, noise 30 dB": (speech48, add_noise(speech48, 30)),
        "speech 16k, 12-bit": (speech48, (np.round(speech48 * 2048) / 2048).astype(np.float32)),
    }
    gst_names = [n.replace("_", "") for n in MOV_NAMES]  # e.g. "BandwidthRefB"
    print(f"== comparison with GstPEAQ in {build}")
    print(f"  {'case':26s} {'ODG ours':>9s} {'GstPEAQ':>8s} {'max |dMOV|/max(1,|MOV|)':>24s}")
    for name, (ref, deg) in cases.items():
        ours = peaq(ref.astype(np.float32), deg.astype(np.float32), SR)
        theirs = _gstpeaq(build, ref.astype(np.float32), deg.astype(np.float32))
        diffs = [abs(ours.movs[k] - theirs.get(g, np.nan)) / max(1.0, abs(ours.movs[k]))
                 for k, g in zip(MOV_NAMES, gst_names)]
        print(f"  {name:26s} {ours.odg:+9.3f} {theirs.get('ObjectiveDifferenceGrade', np.nan):+8.3f} "
              f"{max(diffs):24.2e}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--codecs", action="store_true", help="score MP3/Opus encodes made with ffmpeg")
    ap.add_argument("--gstpeaq", type=Path, help="directory with a GstPEAQ build (peaq, libgstpeaq.so)")
    args = ap.parse_args()
    bench_speed(args.repeats)
    if args.codecs:
        bench_codecs()
    if args.gstpeaq:
        bench_gstpeaq(args.gstpeaq)


if __name__ == "__main__":
    main()
