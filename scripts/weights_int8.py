"""Store shipped EnCodec weights as int8 rows where coding quality is unchanged.

For each model: code ``--seconds`` of validation-split speech of the corpus (compress +
decompress, the real bitstream path, at every rate of the model's ladder) with the shipped
weights and with every large float tensor stored as int8 with one scale per row
(``weights_file.int8_rows``: the convolutions' weight-norm directions, the LSTMs, the codebooks,
the LM), compare PESQ-WB, SI-SNR and file sizes, and when PESQ-WB moves by less than
``--tolerance`` at every rate rewrite ``model.safetensors`` (readers restore the floats:
``weights_file.restore_int8_rows``), record the check in ``training.json`` (``int8_check``) and
update the card.  Then update the golden md5s of the shipped EnCodec tests.

    python scripts/weights_int8.py --data corpus16/manifest.jsonl [encodec-16k encodec-24k]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from neurocodec.audio import resample
from neurocodec.codecs.encodec import EncodecCodec
from neurocodec.codecs.weights_file import INT8_ROWS_KEY, int8_rows, load_safetensors
from neurocodec.eval.metrics_ext import pesq_wb
from neurocodec.eval.snr import si_snr
from neurocodec.train.export import manifest_signals
from weights_fp16 import WEIGHTS, _update_card  # noqa: E402  (scripts/ is on the path)


def code(model: EncodecCodec, files: list[np.ndarray], kbps: float) -> tuple[float, float, int]:
    """Mean PESQ-WB (at 16 kHz), mean SI-SNR and total bytes of ``files`` coded at ``kbps``."""
    pesq, snr, nbytes = [], [], 0
    sr = model.sample_rate
    for x in files:
        enc = model.compress(x, kbps)
        nbytes += enc.num_bytes
        y = model.decompress(enc.chunks, 1, x.shape[-1], kbps)[0]
        ref, deg = (x[0], y) if sr == 16000 else (resample(x[0], sr, 16000), resample(y, sr, 16000))
        pesq.append(pesq_wb(ref, deg, 16000))
        snr.append(si_snr(x[0], y, sr))
    return float(np.nanmean(pesq)), float(np.mean(snr)), nbytes


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("names", nargs="*", default=["encodec-16k", "encodec-24k"])
    ap.add_argument("--data", default="corpus16/manifest.jsonl")
    ap.add_argument("--seconds", type=float, default=30.0, help="validation speech coded per model")
    ap.add_argument("--tolerance", type=float, default=0.02, help="largest PESQ-WB change accepted")
    ap.add_argument("--dry-run", action="store_true", help="measure only; write nothing")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    for name in a.names:
        folder = WEIGHTS / name
        path = folder / "model.safetensors"
        state, meta = load_safetensors(path)
        if meta.get(INT8_ROWS_KEY):
            print(f"{name}: already stored as int8 rows")
            continue
        shipped = EncodecCodec.from_pretrained(path, codec_id=meta.get("codec_id"))
        files = list(manifest_signals(a.data, "valid", ("speech-real", "speech-tts"), shipped.sample_rate,
                                      a.seconds, interleave=True))
        packed, kinds = int8_rows(state)
        with tempfile.TemporaryDirectory() as tmp:
            from safetensors.torch import save_file

            save_file(packed, str(Path(tmp) / "model.safetensors"), metadata={**meta, INT8_ROWS_KEY: kinds})
            small = EncodecCodec.from_pretrained(Path(tmp) / "model.safetensors", codec_id=meta.get("codec_id"))
            size = (Path(tmp) / "model.safetensors").stat().st_size
            rows = []
            for kbps in shipped.config.bandwidths:
                p0, s0, b0 = code(shipped, files, kbps)
                p1, s1, b1 = code(small, files, kbps)
                rows.append({"kbps": kbps, "pesq_wb": [round(p0, 4), round(p1, 4)], "si_snr_db": [round(s0, 2), round(s1, 2)],
                             "bytes": [b0, b1]})
                print(f"{name} {kbps:g} kbps: PESQ-WB {p0:.3f} -> {p1:.3f}, SI-SNR {s0:.2f} -> {s1:.2f} dB, "
                      f"bytes {b0} -> {b1}", flush=True)
            ok = all(abs(r["pesq_wb"][1] - r["pesq_wb"][0]) < a.tolerance for r in rows)
            before = path.stat().st_size
            print(f"{name}: {len(json.loads(kinds))} tensors as int8 rows, {before:,} -> {size:,} bytes -> "
                  f"{'int8 rows' if ok else 'kept'}", flush=True)
            if not ok or a.dry_run:
                continue
            path.write_bytes((Path(tmp) / "model.safetensors").read_bytes())
        training = json.loads((folder / "training.json").read_text())
        training["int8_check"] = {"seconds": round(sum(x.shape[-1] for x in files) / shipped.sample_rate, 1),
                                  "split": "valid", "tensors": len(json.loads(kinds)), "bytes_before": before,
                                  "bytes_after": size, "rates": rows,
                                  "command": f"python scripts/weights_int8.py --data {a.data} {name}"}
        (folder / "training.json").write_text(json.dumps(training, indent=2) + "\n")
        _update_card(folder, "int8 rows with float32 row scales (large tensors), float16 (the rest)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
