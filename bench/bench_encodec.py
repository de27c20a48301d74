"""EnCodec speed on one thread: this package vs the reference package (same architecture, same
random weights), and the LM-coded path.  CPU time (``time.process_time``), best of ``--repeat``;
``x real time`` = audio seconds / CPU seconds.

    python bench/bench_encodec.py [--seconds 10] [--kbps 6] [--repeat 2] [--net-only]

Rows:
* ``reference encode/decode``: ``encodec.EncodecModel.encodec_model_24khz(pretrained=False)``
  (``pip install --no-deps encodec``; torchaudio is stubbed), whole file;
* ``net encode/decode``: this package's network with the converted weights, whole file;
* ``codec compress/decompress (static|lm)``: the full codec, streaming in 320-sample blocks as
  the bitstream requires, with range coding (static tables, or the LM of the paper's size:
  5 layers, 8 heads, 200 channels, FF 800, 32 codebooks, random weights, integer inference);
* ``shipped encodec-24k``: the shipped reduced model and its LM, when present.
"""

from __future__ import annotations

import argparse
import sys
import time
import types

import numpy as np
import torch

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from _timing import best_time  # noqa: E402


def _reference():
    if "torchaudio" not in sys.modules:
        ta = types.ModuleType("torchaudio")
        ta.transforms = types.ModuleType("torchaudio.transforms")
        sys.modules["torchaudio"] = ta
        sys.modules["torchaudio.transforms"] = ta.transforms
    try:
        from encodec.model import EncodecModel, LMModel
    except ImportError as e:
        print(f"reference package not installed ({e}); pip install --no-deps encodec einops")
        return None, None
    return EncodecModel, LMModel


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--kbps", type=float, default=6.0)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--net-only", action="store_true", help="only the reference and network rows")
    args = ap.parse_args()
    torch.set_num_threads(1)
    from neurocodec.codecs.encodec import EncodecCodec, EncodecConfig
    from neurocodec.codecs.encodec_import import convert_state_dict

    rng = np.random.default_rng(0)
    n = int(args.seconds * 24000)
    t = np.arange(n) / 24000
    x = (0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(n)).astype(np.float32)[None]
    xt = torch.from_numpy(x)[None]
    clock = time.process_time
    rows = []

    def row(name, fn):
        s = best_time(fn, args.repeat, clock)
        rows.append((name, s, args.seconds / s))
        print(f"{name:<40} {s:8.3f} s CPU  {args.seconds / s:7.1f}x real time", flush=True)

    print(f"one thread, {args.seconds:g} s of 24 kHz audio at {args.kbps:g} kbps")
    Ref, RefLM = _reference()
    torch.manual_seed(0)
    if Ref is not None:
        ref = Ref.encodec_model_24khz(pretrained=False).eval()
        ref.set_target_bandwidth(args.kbps)
        with torch.no_grad():
            frames = ref.encode(xt)
        with torch.no_grad():
            row("reference encode (whole file)", lambda: ref.encode(xt))
            row("reference decode (whole file)", lambda: ref.decode(frames))
        net = convert_state_dict(ref.state_dict())
    else:
        from neurocodec.codecs.encodec_model import EncodecNet

        net = EncodecNet().eval()
    n_q = net.cfg.n_q_for(args.kbps)
    with torch.no_grad():
        mine = net.encode(xt, n_q)
        row("net encode (whole file)", lambda: net.encode(xt, n_q))
        row("net decode (whole file)", lambda: net.decode(mine))
    if args.net_only:
        return 0

    lm_cfg = dict(lm_n_q=32, lm_dim=200, lm_layers=5, lm_heads=8, lm_ff=800)
    for coder in ("static", "lm"):
        codec = EncodecCodec(EncodecConfig(coder=coder, **lm_cfg))
        codec.net.load_state_dict(net.state_dict())
        codec.eval()
        enc = codec.compress(x, args.kbps)
        row(f"codec compress ({coder}, paper-size LM)" if coder == "lm" else "codec compress (static)",
            lambda: codec.compress(x, args.kbps))
        row(f"codec decompress ({coder})", lambda: codec.decompress(enc.chunks, 1, n, args.kbps))
        print(f"{'':<40} payload {enc.num_bytes * 8 / args.seconds / 1000:.2f} kbps")

    from neurocodec.codecs.encodec import encodec_24k

    shipped = encodec_24k()
    if shipped.has_trained_weights():
        m = shipped.model
        kb = args.kbps if args.kbps in m.config.bandwidths else m.config.default_kbps
        enc = m.compress(x, kb)
        row(f"shipped encodec-24k compress ({m.coder_name()}, {kb:g} kbps)", lambda: m.compress(x, kb))
        row(f"shipped encodec-24k decompress ({m.coder_name()})", lambda: m.decompress(enc.chunks, 1, n, kb))
    return 0


if __name__ == "__main__":
    sys.exit(main())
