"""File rates of the shipped byun2023 operating points (``perceptual-fem`` / ``perceptual-hpm``)
on a corpus split: every file is coded for real into a ``.ncdc`` stream (``neurocodec.api``,
container included, as ``neurocodec eval`` measures it), and per point the script prints the
mean file rate, its deviation from the nominal rate, the range of the per-file deviations, how
many files land within +-5 % (issue 14's tolerance) and the total rate (bytes over seconds of
all files); with ``--pesq`` also the mean PESQ-WB and SNR of the decoded files.

    python scripts/byun_rates.py --data corpus16/manifest.jsonl --split test --sources speech-real,speech-tts
    python scripts/byun_rates.py ... --no-rate-control      # every chunk at the trained code_scale
    python scripts/byun_rates.py ... --bitrates 16 --pesq   # PESQ-WB too (slow)

``--no-rate-control`` switches the per-file rate control of :mod:`neurocodec.codecs.perceptual_rate`
off (what the coder did before it: one quantizer scale per model).
"""

from __future__ import annotations

import argparse
import json
import sys


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="corpus manifest")
    ap.add_argument("--split", default="test")
    ap.add_argument("--sources", default="speech-real,speech-tts")
    ap.add_argument("--codecs", default="perceptual-fem,perceptual-hpm")
    ap.add_argument("--bitrates", default="9,13,16,20,24")
    ap.add_argument("--limit", type=int, default=None, help="first N files only")
    ap.add_argument("--no-rate-control", action="store_true", help="one quantizer scale per model (version 1 behaviour)")
    ap.add_argument("--fixed-index", type=int, default=None,
                    help="rate control off and every chunk at this grid index k (g = code_scale * 2**(k/16)): "
                         "the one-scale coder at another mean rate, for comparisons at matched rates")
    ap.add_argument("--pesq", action="store_true", help="decode and report the mean PESQ-WB and SNR")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    import numpy as np
    import torch

    import neurocodec
    from neurocodec.audio import read_audio, resample
    from neurocodec.train.export import manifest_records

    torch.set_num_threads(1)
    root, records = manifest_records(args.data, args.split, [s for s in args.sources.split(",") if s])
    records = records[: args.limit]
    files = []
    for r in records:
        x, sr = read_audio(root / r.path)
        files.append(resample(x.mean(axis=0, keepdims=True), sr, 16000))
    seconds = sum(x.shape[1] for x in files) / 16000
    rows = []
    for cid in [c for c in args.codecs.split(",") if c]:
        codec = neurocodec.load(cid)
        for kbps in [float(b) for b in args.bitrates.split(",") if b]:
            model = codec.model.model_for(kbps)
            model.set_file_rate_control(not args.no_rate_control and args.fixed_index is None)
            if args.fixed_index is not None:
                from neurocodec.codecs.perceptual_rate import grid_scale

                model.with_code_scale(grid_scale(model.config.code_scale, args.fixed_index))
            rates, nbytes, pesq, snrs = [], 0, [], []
            for x in files:
                data = codec.compress(x, 16000, bitrate=kbps)
                nbytes += len(data)
                rates.append(8 * len(data) / (x.shape[1] / 16000) / 1000)
                if args.pesq:
                    from neurocodec.eval.metrics_ext import pesq_wb
                    from neurocodec.eval.snr import snr

                    y, _ = codec.decompress(data)
                    pesq.append(pesq_wb(x[0], y[0], 16000))
                    snrs.append(snr(x[0], y[0], 16000))
            dev = np.asarray(rates) / kbps - 1
            row = {"codec": cid, "kbps": kbps, "files": len(files), "seconds": round(seconds, 1),
                   "mean_file_kbps": float(np.mean(rates)), "mean_deviation": float(np.mean(rates)) / kbps - 1,
                   "min_deviation": float(dev.min()), "max_deviation": float(dev.max()),
                   "within_5pct": int(np.sum(np.abs(dev) <= 0.05)), "total_kbps": 8 * nbytes / seconds / 1000}
            if args.pesq:
                row["pesq_wb"] = float(np.nanmean(pesq))
                row["snr_db"] = float(np.nanmean(snrs))
            rows.append(row)
            if not args.json:
                if len(rows) == 1:
                    print("| point | mean file kbps | vs nominal | per-file deviation | files within ±5 % | total kbps |"
                          + (" PESQ-WB | SNR dB |" if args.pesq else ""))
                    print("|---|---|---|---|---|---|" + ("---|---|" if args.pesq else ""))
                print(f"| {cid}-{kbps:g}k | {row['mean_file_kbps']:.2f} | {100 * row['mean_deviation']:+.1f} % | "
                      f"{100 * row['min_deviation']:+.1f} .. {100 * row['max_deviation']:+.1f} % | "
                      f"{row['within_5pct']} / {row['files']} | {row['total_kbps']:.2f} |"
                      + (f" {row['pesq_wb']:.3f} | {row['snr_db']:.2f} |" if args.pesq else ""), flush=True)
    if args.json:
        print(json.dumps({"split": args.split, "sources": args.sources, "rate_control": not args.no_rate_control,
                          "rows": rows}, indent=2))
    else:
        print(f"\n{len(files)} files ({seconds:.0f} s) of '{args.split}' ({args.sources}); rates of the whole .ncdc "
              f"files, per-file rate control {'off' if args.no_rate_control or args.fixed_index is not None else 'on'}"
              + (f", every chunk at grid index {args.fixed_index}" if args.fixed_index is not None else "") + ".")
    return 0


if __name__ == "__main__":
    sys.exit(main())
