"""The shipped CMRL, LPC-CMRL and CQ weights: every operating point loads, codes real files at its rate,
and writes golden bitstreams.

Neural encoders are bit-exact for a given CPU kernel family (the networks run chunk by chunk,
identically with 1 and 2 torch threads); a CPU with other vector instructions may round a
convolution differently in the last bit and flip a symbol that sits on a decision boundary.
So the md5s are asserted on the kernel family they were recorded with (``GOLDEN_CPU``), and
elsewhere the stream must still be reproducible on that machine and decode.
"""

from __future__ import annotations


import numpy as np
import pytest
import torch

import neurocodec
from neurocodec import audio
from neurocodec.codecs.cmrl import CMRL_BITRATES
from neurocodec.codecs.cq import CQ_BITRATES

#: torch.backends.cpu.get_cpu_capability() of the machine that recorded GOLDEN
GOLDEN_CPU = "AVX512"
#: md5 of the .ncdc file of the first 2 s of examples/speech.flac (``python scripts/update_golden.py``
#: rewrites them after the shipped weights change)
GOLDEN: dict[tuple[str, float], str] = {
    ("cq", 9.0): "a82658ab26f09dcf7a1d4160a8a6678b",
    ("cq", 16.0): "212dc6af83c86646ad54f63988da1cca",
    ("cq", 20.0): "b9c1458690f2f15b78c92a451e4b840d",
    ("cq", 24.0): "41e763ef46b80f20829cd6f70fea60ed",
    ("cmrl", 8.85): "5c21c870e61001342de93b052ef97d01",
    ("cmrl", 15.85): "f3559ee42e08ff3081d5c9b9ddd0cb44",
    ("cmrl", 19.85): "cb37d58ffb22154eee0c827dc220d5ed",
    ("cmrl", 23.85): "96263168249c1091d1b31f69ddcb2134",
    ("lpc-cmrl", 8.85): "b886a5949c56ebf3f77f3faabd3f89b0",
    ("lpc-cmrl", 15.85): "1e5f66d5ea584ab32646d0c5c9224da5",
    ("lpc-cmrl", 19.85): "fb432b2fcb51840b3d511197b78abf79",
    ("lpc-cmrl", 23.85): "57bd867df5d7bf8a64325dca18e912f9",
}

#: the LPC-CMRL points that ship (docs/cmrl_cq.md)
LPC_CMRL_SHIPPED = (8.85, 15.85, 19.85, 23.85)
POINTS = ([("cq", b) for b in CQ_BITRATES] + [("cmrl", b) for b in CMRL_BITRATES]
          + [("lpc-cmrl", b) for b in LPC_CMRL_SHIPPED])
#: every point was exported with the rate trim
TRIMMED = POINTS
#: points shipped without per-file rate control: LPC-CMRL 15.85 (session 9) has its bits in
#: module 2, whose symbols sit on its learned centroids, so with the fixed entropy tables any
#: other ladder step makes a file larger (a 2.2 s validation file: 5,559 bytes at the trained
#: step, 7,951 four steps coarser; docs/cmrl_cq.md) and the control only inflated the files
#: under budget; its trim was calibrated on the valid split instead, and single files land where
#: their content puts them (test split: +5.3 % mean of files, +1.4 % in total)
NO_RATE_CONTROL = {("lpc-cmrl", 15.85)}
#: how far a 2 s / 0.7 s clip may land from nominal at those points (17.08 and 15.82 kbps: +7.8 %, -0.2 %)
RATE_TOLERANCE = {("lpc-cmrl", 15.85): 0.10}


@pytest.fixture(scope="module")
def speech2s():
    from pathlib import Path

    wav, sr = audio.read_audio(Path(__file__).resolve().parents[2] / "examples" / "speech.flac")
    assert sr == 16000
    return wav[:, : 2 * sr]


def _encode(codec_id: str, kbps: float, wav: np.ndarray) -> bytes:
    return neurocodec.load(codec_id).compress(wav, 16000, bitrate=kbps)


@pytest.mark.parametrize("codec_id,kbps", POINTS)
def test_every_operating_point_ships_weights(codec_id, kbps):
    family = neurocodec.load(codec_id).model
    assert family.weights_path(kbps).is_file(), f"{codec_id} {kbps:g} kbps has no shipped weights"
    model = family.model_for(kbps)
    assert model.has_trained_weights() and not model.training
    assert model.config.bitrate_kbps == kbps
    assert all(int(t.pair_counts.sum()) > 0 for t in model.entropy_tables.values())  # fitted tables


@pytest.mark.parametrize("codec_id,kbps", TRIMMED)
def test_every_operating_point_was_rate_trimmed(codec_id, kbps):
    """The export's rate trim put real files of held-out training speech within 2.5% of nominal
    (its tolerance is 1%; CMRL 15.85 stops at -2.2%: its code reaches the outer centroids, so a
    finer step saturates instead of adding bits), and the step it chose is the one the shipped
    config quantizes with."""
    import json

    family = neurocodec.load(codec_id).model
    training = json.loads((family.weights_path(kbps).parent / "training.json").read_text())
    trim = training["rate_trim"]
    assert trim["target_kbps"] == kbps and abs(trim["kbps"] / kbps - 1) < 0.025
    assert family.model_for(kbps).config.code_scale == pytest.approx(trim["code_scale"])


@pytest.mark.parametrize("codec_id,kbps", POINTS)
def test_files_land_on_the_nominal_rate(codec_id, kbps, speech2s):
    """The shipped weights control their rate per file (container included): a 2 s and a 0.7 s
    clip come out within 5% of nominal, although the fixed bytes of the container alone are
    0.25 and 0.7 kbps of them."""
    family = neurocodec.load(codec_id).model
    assert family.model_for(kbps).config.file_rate_control == ((codec_id, kbps) not in NO_RATE_CONTROL)
    for seconds in (2.0, 0.7):
        clip = speech2s[:, : int(seconds * 16000)]
        rate = 8 * len(_encode(codec_id, kbps, clip)) / seconds / 1000
        assert abs(rate / kbps - 1) <= RATE_TOLERANCE.get((codec_id, kbps), 0.05), (seconds, rate)


@pytest.mark.parametrize("codec_id,kbps", POINTS)
def test_golden_bitstreams_of_shipped_models(codec_id, kbps, speech2s, md5_per_thread_count):
    digests = md5_per_thread_count(lambda: _encode(codec_id, kbps, speech2s))
    assert digests[0] == digests[1]
    if torch.backends.cpu.get_cpu_capability() == GOLDEN_CPU:
        assert digests[0] == GOLDEN[(codec_id, kbps)]
    data = _encode(codec_id, kbps, speech2s)
    y, sr = neurocodec.api.decompress(data)
    assert sr == 16000 and y.shape == speech2s.shape and np.isfinite(y).all()
    # the decoder is deterministic too
    y2, _ = neurocodec.api.decompress(data)
    assert np.array_equal(y, y2)
