"""The shipped byun2023 weights (perceptual-fem / perceptual-hpm): every shipped operating point
loads with its integer tables, codes real speech near its rate, and writes golden bitstreams.

The md5s are asserted on the CPU kernel family that recorded them (see test_shipped_weights.py);
elsewhere the stream must still be thread-independent and decode.  Rewrite them with

    python -c "import hashlib,torch,neurocodec;from neurocodec import audio;torch.set_num_threads(1);\
w,sr=audio.read_audio('examples/speech.flac');w=w[:,:2*sr];\
[print(c,k,hashlib.md5(neurocodec.load(c).compress(w,sr,bitrate=k)).hexdigest()) for c,k in SHIPPED]"
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import neurocodec
from neurocodec import audio

GOLDEN_CPU = "AVX512"
#: operating points that ship weights: all five rates of both variants (byun2023 §4.2)
SHIPPED = [(c, k) for c in ("perceptual-fem", "perceptual-hpm") for k in (9.0, 13.0, 16.0, 20.0, 24.0)]
#: md5 of the .ncdc file of the first 2 s of examples/speech.flac (one torch thread)
GOLDEN: dict[tuple[str, float], str] = {
    ("perceptual-fem", 16.0): "a76b51d3a3ffe73f61b5d5249830945a",
    ("perceptual-hpm", 16.0): "0893592afe45f3b03ba841a2952138bd",
    ("perceptual-hpm", 24.0): "0383845c640e8acc5ed0d6b9565a99ef",
    ("perceptual-fem", 9.0): "3a95efe9c351b45f5257c6e41a7e9066",
    ("perceptual-hpm", 9.0): "df799fafcf6395482ac1308fae3db523",
    ("perceptual-fem", 13.0): "fa52b1e81ab538172b32dae3e4d17b6a",
    ("perceptual-hpm", 13.0): "7c0fd91ab92caaa41bc629c9eee30d60",
    ("perceptual-fem", 20.0): "cd609770f806ce5cab8e5acf5158995e",
    ("perceptual-hpm", 20.0): "4170b0cd1859db786f116218543589f7",
    ("perceptual-fem", 24.0): "8dcd805f9a0777910098e4064dbcbe14",
}


@pytest.fixture(scope="module")
def speech2s():
    wav, sr = audio.read_audio(Path(__file__).resolve().parents[2] / "examples" / "speech.flac")
    return wav[:, : 2 * sr]


def _encode(codec_id, kbps, wav):
    return neurocodec.load(codec_id).compress(wav, 16000, bitrate=kbps)


@pytest.mark.parametrize("codec_id,kbps", SHIPPED)
def test_shipped_point_loads_with_tables(codec_id, kbps):
    fam = neurocodec.load(codec_id).model
    assert fam.weights_path(kbps).is_file()
    m = fam.model_for(kbps)
    assert m.has_trained_weights() and not m.training and m.config.bitrate_kbps == kbps
    assert m._tables is not None  # the integer tables built at export ship with the weights


@pytest.mark.parametrize("codec_id,kbps", SHIPPED)
def test_golden_bitstreams(codec_id, kbps, speech2s, md5_per_thread_count):
    digests = md5_per_thread_count(lambda: _encode(codec_id, kbps, speech2s))
    assert digests[0] == digests[1]
    if torch.backends.cpu.get_cpu_capability() == GOLDEN_CPU:
        assert digests[0] == GOLDEN[(codec_id, kbps)]
    data = _encode(codec_id, kbps, speech2s)
    y, sr = neurocodec.api.decompress(data)
    assert sr == 16000 and y.shape == speech2s.shape and np.isfinite(y).all()
    assert np.array_equal(y, neurocodec.api.decompress(data)[0])


@pytest.mark.parametrize("codec_id,kbps", SHIPPED)
def test_corrupted_file_is_rejected(codec_id, kbps, speech2s):
    data = bytearray(_encode(codec_id, kbps, speech2s))
    data[len(data) // 2] ^= 0xFF
    with pytest.raises(neurocodec.errors.StreamError):
        neurocodec.api.decompress(bytes(data))
