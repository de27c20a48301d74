"""Reproduce Table 1 of byun2023 (bit allocation of the HPM coder) from the shipped HPM models.

For every operating point of ``perceptual-hpm`` that ships weights, the files of a corpus split
are coded for real (``compress``) and analysed: bits per sample of the main latent (the
Gaussian-conditional code of ``z``) and of the side information (the FEM code of the
hyper-latent), as the model's code lengths (``-log2`` likelihoods with hard quantization), the
side-information ratio ``side / (main + side)``, and, as a check, the real payload size in
bits per sample (range-coded chunks, no container).  The code lengths are taken at the
quantizer scale each chunk was coded with (the per-file rate control's grid index,
:mod:`neurocodec.codecs.perceptual_rate`).  Points without weights are listed as missing.

    python scripts/byun_table1.py --data /work/corpus16/manifest.jsonl --split test \
        --sources speech-real,speech-tts [--max-seconds 120] [--json]
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
    ap.add_argument("--max-seconds", type=float, default=120.0, help="audio per operating point")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    import torch

    from neurocodec.codecs.perceptual import PERCEPTUAL_BITRATES, hpm_family
    from neurocodec.codecs.perceptual_rate import split_chunk
    from neurocodec.train.export import manifest_signals

    torch.set_num_threads(1)
    fam = hpm_family()
    rows, missing = [], []
    sources = [s for s in args.sources.split(",") if s]
    for kbps in PERCEPTUAL_BITRATES:
        if not fam.weights_path(kbps).is_file():
            missing.append(kbps)
            continue
        model = fam.model_for(kbps)
        main = side = real = 0.0
        samples = 0
        for x in manifest_signals(args.data, args.split, sources, model.sample_rate, args.max_seconds):
            enc = model.compress(x, kbps)
            an = model.analyze(x, grid_indexes=[split_chunk(c)[0] for c in enc.chunks])
            main += an["main_bits"]
            side += an["side_bits"]
            real += 8 * enc.num_bytes
            samples += x.shape[1]
        rows.append({"kbps": kbps, "main_bps": main / samples, "side_bps": side / samples,
                     "side_ratio": side / (main + side), "payload_bps": real / samples,
                     "payload_kbps": real / samples * model.sample_rate / 1000, "seconds": samples / model.sample_rate})
    if args.json:
        print(json.dumps({"rows": rows, "missing_kbps": missing}, indent=2))
        return 0
    if rows:
        head = "| | " + " | ".join(f"{r['kbps']:g} kbps" for r in rows) + " |"
        print(head)
        print("|---" * (len(rows) + 1) + "|")
        print("| Main-network (bits/sample) | " + " | ".join(f"{r['main_bps']:.3f}" for r in rows) + " |")
        print("| Sub-network (bits/sample) | " + " | ".join(f"{r['side_bps']:.3f}" for r in rows) + " |")
        print("| Side info ratio | " + " | ".join(f"{100 * r['side_ratio']:.2f}%" for r in rows) + " |")
        print("| Real payload (bits/sample) | " + " | ".join(f"{r['payload_bps']:.3f}" for r in rows) + " |")
        print("| Real payload (kbps) | " + " | ".join(f"{r['payload_kbps']:.2f}" for r in rows) + " |")
        print(f"\n{rows[0]['seconds']:.0f} s of '{args.split}' audio ({', '.join(sources)}) per point.")
    if missing:
        print("no shipped perceptual-hpm weights at " + ", ".join(f"{k:g}" for k in missing) + " kbps")
    return 0 if rows else 1


if __name__ == "__main__":
    sys.exit(main())
