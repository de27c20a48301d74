"""The shipped encodec-16k weights (16 kHz speech): they load offline, code at every rate of their
ladder with their default coder, give the golden bitstream, and a bad stream exits with status 2."""

import hashlib

import numpy as np
import pytest

from neurocodec.codecs.encodec import encodec_16k

SHIPPED = encodec_16k()
pytestmark = pytest.mark.skipif(not SHIPPED.has_trained_weights(),
                                reason=f"no shipped weights at {SHIPPED.path}")

#: md5 of the payload of _signal() at 4 kbps with the shipped weights and their default coder
GOLDEN_4K = "cc875103f24d35fb9b1e26235e13a8bc"


def _signal(seconds=1.0, sr=16000):
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * 300 * t) * np.sin(2 * np.pi * 2 * t)).astype(np.float32)[None]


def test_ladder_round_trips():
    m = SHIPPED.model
    assert m.sample_rate == 16000 and tuple(m.config.bandwidths) == (1.0, 2.0, 4.0, 8.0)
    x = _signal()
    for kbps in m.config.bandwidths:
        enc = m.compress(x, kbps)
        assert enc.chunks[0][0] == {"lm": 2, "static": 1, "uniform": 0}[m.coder_name()]
        y = m.decompress(enc.chunks, 1, x.shape[1], kbps)
        assert y.shape == x.shape and np.isfinite(y).all()
        assert enc.num_bytes * 8 / 1.0 / 1000 < kbps * 1.2  # entropy coding does not inflate the rate


@pytest.mark.parametrize("threads", [1, 2])
def test_golden_bitstream(threads):
    import torch

    torch.set_num_threads(threads)  # restored by the autouse fixture of tests/codecs/conftest.py
    enc = SHIPPED.model.compress(_signal(), 4.0)
    md5 = hashlib.md5(b"".join(enc.chunks)).hexdigest()
    assert GOLDEN_4K is not None and md5 == GOLDEN_4K, md5


def test_cli_round_trip_and_bad_stream(tmp_path):
    import soundfile as sf

    from neurocodec.bitstream.container import pack, unpack
    from neurocodec.cli import main

    wav = tmp_path / "in.wav"
    sf.write(wav, _signal()[0], 16000)
    assert main(["encode", str(wav), str(tmp_path / "a.ncdc"), "--codec", "encodec-16k", "--bitrate", "4"]) == 0
    assert main(["decode", str(tmp_path / "a.ncdc"), str(tmp_path / "out.wav")]) == 0
    s = unpack((tmp_path / "a.ncdc").read_bytes())
    bad = bytearray(s.chunks[0])
    bad[1] = 3  # wrong number of codebooks for the header's bitrate: a valid container, a bad payload
    (tmp_path / "bad.ncdc").write_bytes(pack(s.header, [bytes(bad)] + list(s.chunks[1:])))
    assert main(["decode", str(tmp_path / "bad.ncdc"), str(tmp_path / "bad.wav")]) == 2
    assert not (tmp_path / "bad.wav").exists()
