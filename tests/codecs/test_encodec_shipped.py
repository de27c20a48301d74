"""The shipped encodec-24k weights: they load offline, code at every rate of their ladder (1.5-24
kbps) with their default coder, give the golden bitstreams, keep the streams of the 16-codebook
model they extend, and bad streams exit with status 2."""

import hashlib

import numpy as np
import pytest

from neurocodec.codecs.encodec import encodec_24k

SHIPPED = encodec_24k()
pytestmark = pytest.mark.skipif(not SHIPPED.has_trained_weights(),
                                reason=f"no shipped weights at {SHIPPED.path}")

#: md5 of the LM-coded payload of _signal() at 6 kbps with the shipped weights
GOLDEN_6K = "7dd81b87654b1e8bf74ef46fcae186be"
#: the same at 24 kbps: 32 codebooks, 1-16 coded with the LM, 17-32 with the static tables
GOLDEN_24K = "2f5bff235790c465f7e32c0743841fce"
#: config hash of the 16-codebook model inside the 32-codebook one (1.5-12 kbps streams); it
#: changed once since codebooks 17-32 were added (0xF55F0A46), when the weights went to int8 rows
HASH_16 = 0xACF94062


def _signal(seconds=1.0, sr=24000):
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * 300 * t) * np.sin(2 * np.pi * 2 * t)).astype(np.float32)[None]


def test_ladder_round_trips():
    m = SHIPPED.model
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
    enc = SHIPPED.model.compress(_signal(), 6.0)
    md5 = hashlib.md5(b"".join(enc.chunks)).hexdigest()
    assert GOLDEN_6K is not None and md5 == GOLDEN_6K, md5
    enc = SHIPPED.model.compress(_signal(), 24.0)
    md5 = hashlib.md5(b"".join(enc.chunks)).hexdigest()
    assert md5 == GOLDEN_24K, md5


def test_24_kbps_listed_and_better_than_12():
    from neurocodec.codecs.registry import create
    from neurocodec.eval.snr import si_snr

    m = SHIPPED.model
    assert m.config.n_q == 32 and create("encodec-24k").bitrates.choices == (1.5, 3.0, 6.0, 12.0, 24.0)
    x = _signal(1.5)
    snr = {}
    for kbps in (12.0, 24.0):
        enc = m.compress(x, kbps)
        assert all(c[1] == m.n_q_for(kbps) for c in enc.chunks)
        snr[kbps] = si_snr(x[0], m.decompress(enc.chunks, 1, x.shape[1], kbps)[0], 24000)
    assert snr[24.0] > snr[12.0], snr


def test_old_bandwidths_keep_the_16_codebook_hash():
    # streams of 1.5-12 kbps are those of the model before the extension, config hash included,
    # so files written with it still decode
    for kbps in (1.5, 3.0, 6.0, 12.0):
        assert SHIPPED.stream_config_hash(kbps) == HASH_16
    assert SHIPPED.stream_config_hash(24.0) != HASH_16


def test_cli_round_trip_and_bad_stream(tmp_path):
    import soundfile as sf

    from neurocodec.bitstream.container import pack, unpack
    from neurocodec.cli import main

    wav = tmp_path / "in.wav"
    sf.write(wav, _signal()[0], 24000)
    assert main(["encode", str(wav), str(tmp_path / "a.ncdc"), "--codec", "encodec-24k", "--bitrate", "6"]) == 0
    assert main(["decode", str(tmp_path / "a.ncdc"), str(tmp_path / "out.wav")]) == 0
    s = unpack((tmp_path / "a.ncdc").read_bytes())
    bad = bytearray(s.chunks[0])
    bad[1] = 3  # wrong number of codebooks for the header's bitrate: a valid container, a bad payload
    (tmp_path / "bad.ncdc").write_bytes(pack(s.header, [bytes(bad)] + list(s.chunks[1:])))
    assert main(["decode", str(tmp_path / "bad.ncdc"), str(tmp_path / "bad.wav")]) == 2
    assert not (tmp_path / "bad.wav").exists()
