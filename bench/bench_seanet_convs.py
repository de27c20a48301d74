"""The strided convolutions of the 24 kHz SEANet encoder in whole-signal inference, one thread:
oneDNN's strided ``conv1d`` against the polyphase path (``SConv1d._polyphase``: a stride-1
convolution over the stacked phases), each layer on its own input size for ``--seconds`` of
audio, best of ``--repeat`` (wall time, fresh output buffers as in the model), and the whole
encoder with the polyphase path off and on (``seanet.POLYPHASE_STRIDES``).

    python bench/bench_seanet_convs.py [--seconds 10] [--repeat 7]
"""

from __future__ import annotations

import argparse
import sys

import torch


sys.path.insert(0, __file__.rsplit("/", 1)[0])
from _timing import best_time  # noqa: E402


def best(fn, repeat: int) -> float:
    fn()  # warm-up: the layer's cached weights
    return best_time(fn, repeat)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--repeat", type=int, default=7)
    a = ap.parse_args()
    torch.set_num_threads(1)
    from neurocodec.codecs.encodec_model import EncodecNet
    from neurocodec.nn import seanet

    torch.manual_seed(0)
    net = EncodecNet().eval()
    n = int(a.seconds * 24000)
    x = torch.randn(1, 1, n) * 0.1
    shipped = seanet.POLYPHASE_STRIDES
    print(f"one thread, {a.seconds:g} s of 24 kHz audio; polyphase strides in the package: {shipped}")
    with torch.no_grad():
        length = n
        channels = net.cfg.seanet.n_filters
        for down in net.encoder.downsample:
            h = torch.randn(1, channels, length)
            times = {}
            for label, strides in (("conv1d", ()), ("polyphase", (down.stride,))):
                seanet.POLYPHASE_STRIDES = strides
                times[label] = best(lambda: down(h), a.repeat)
            print(f"stride {down.stride} kernel {down.kernel:2d} {channels:3d}->{2 * channels:3d} channels, "
                  f"{length:7d} samples: conv1d {times['conv1d'] * 1e3:6.1f} ms, polyphase "
                  f"{times['polyphase'] * 1e3:6.1f} ms ({times['conv1d'] / times['polyphase']:.2f}x)")
            length = -(-length // down.stride)
            channels *= 2
        whole = {}
        for label, strides in (("off", ()), ("on (package setting)", shipped)):
            seanet.POLYPHASE_STRIDES = strides
            whole[label] = best(lambda: net.encoder(x), a.repeat)
            print(f"whole encoder, polyphase {label}: {whole[label] * 1e3:.1f} ms")
    seanet.POLYPHASE_STRIDES = shipped
    return 0


if __name__ == "__main__":
    sys.exit(main())
