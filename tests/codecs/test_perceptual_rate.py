"""File-level rate control of the byun2023 coder (codec version 2): the grid, the index byte of
every chunk (round trip, version-1 chunks, malformed indexes, through the CLI too), and files
landing within +-5 % of their nominal rate (issue 14) with tiny seeded models and the shipped
weights (examples/speech.flac, and two files of the corpus test split when it is there)."""

from __future__ import annotations

import io
import os
from decimal import Decimal, getcontext
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import neurocodec
from neurocodec import audio, stream
from neurocodec.bitstream.container import StreamReader, StreamWriter
from neurocodec.cli import main as cli_main
from neurocodec.codecs.perceptual import PerceptualFemCodec, PerceptualHpmCodec, perceptual_config
from neurocodec.codecs.perceptual_rate import (_FRACTIONS, GRID, GRID_OFFSET, grid_multiplier, grid_scale,
                                               index_byte, split_chunk)
from neurocodec.errors import CorruptStreamError

ROOT = Path(__file__).resolve().parents[2]


from test_perceptual import speech, tiny  # noqa: E402,F401  (the seeded tiny models and the 4 s clip)


def test_grid_constants_are_exact_powers_of_two():
    getcontext().prec = 60
    for j, f in enumerate(_FRACTIONS):
        assert f == float(Decimal(2) ** (Decimal(j) / 16))  # correctly rounded
    assert grid_multiplier(0) == 1.0 and grid_multiplier(16) == 2.0 and grid_multiplier(-48) == 0.125
    assert grid_multiplier(-15) == _FRACTIONS[1] / 2
    assert grid_scale(1.5, 8) == 1.5 * _FRACTIONS[8]
    assert (GRID.start, GRID.stop) == (-48, 49)
    with pytest.raises(ValueError):
        grid_multiplier(49)


def test_chunk_index_byte_and_versions():
    words = b"\x01\x02\x03\x04"
    assert split_chunk(index_byte(-48) + words) == (-48, words)
    assert split_chunk(index_byte(48) + words) == (48, words)
    assert split_chunk(words) == (0, words)  # a version-1 chunk: whole words, no index
    for bad in (bytes([GRID_OFFSET + 49]) + words, b"\xff" + words):
        with pytest.raises(CorruptStreamError, match="rate index"):
            split_chunk(bad)
    for bad in (words[:2], words + b"\0\0"):
        with pytest.raises(CorruptStreamError):
            split_chunk(bad)


@pytest.mark.parametrize("cls", [PerceptualFemCodec, PerceptualHpmCodec])
def test_grid_index_round_trips_and_decodes_with_its_scale(cls, speech):
    """A chunk coded at grid index k starts with k's byte, and decodes to what the model gives
    at code_scale * 2**(k/16) (the decoder uses the index it reads)."""
    x = speech[:, :24000]
    m = tiny(cls, gain=3.0)
    n = m.num_chunks(1, x.shape[1], 16)
    for k in (-7, 5):
        enc = m.compress(x, 16, grid_indexes=[k] * n)
        assert len(enc.chunks) == n and all(c[0] == k + GRID_OFFSET for c in enc.chunks)
        y = m.decompress(enc.chunks, 1, x.shape[1], 16)
        ref = tiny(cls, gain=3.0).with_code_scale(grid_scale(1.0, k))
        with torch.no_grad():
            r = ref(torch.from_numpy(x)[None])
        assert np.abs(r.audio[0].numpy() - y).max() < 1e-5
        assert abs(8 * enc.num_bytes / float(r.bits) - 1) < 0.02  # the estimate at that scale
    mixed = [3, -2][:n] + [0] * (n - 2)
    enc = m.compress(x, 16, grid_indexes=mixed)
    assert [split_chunk(c)[0] for c in enc.chunks] == mixed
    assert np.isfinite(m.decompress(enc.chunks, 1, x.shape[1], 16)).all()
    with pytest.raises(ValueError):
        m.compress(x, 16, grid_indexes=[0] * (n + 1))


@pytest.mark.parametrize("cls", [PerceptualFemCodec, PerceptualHpmCodec])
def test_version1_chunks_decode_at_the_trained_scale(cls, speech):
    x = speech[:, :16000]
    m = tiny(cls)
    enc = m.compress(x, 16)  # rate control off: every chunk at k = 0
    assert all(c[0] == GRID_OFFSET for c in enc.chunks)
    y2 = m.decompress(enc.chunks, 1, x.shape[1], 16)
    y1 = m.decompress([c[1:] for c in enc.chunks], 1, x.shape[1], 16)
    assert np.array_equal(y1, y2)
    assert 2 in m.decodable_versions() and 1 in m.decodable_versions() and m.codec_version == 2


@pytest.mark.parametrize("cls", [PerceptualFemCodec, PerceptualHpmCodec])
def test_malformed_index_is_rejected(cls, speech):
    m = tiny(cls)
    enc = m.compress(speech[:, :8000], 16)
    assert len(enc.chunks) == 2
    for b in (GRID_OFFSET + 49, 0xFF):
        bad = [enc.chunks[0], bytes([b]) + enc.chunks[1][1:]]
        with pytest.raises(CorruptStreamError, match="rate index"):
            m.decompress(bad, 1, 8000, 16)
    with pytest.raises(CorruptStreamError):
        m.decompress([enc.chunks[0][:-2], enc.chunks[1]], 1, 8000, 16)  # neither an index and words nor words


@pytest.mark.parametrize("cls,kbps", [(PerceptualFemCodec, 40.0), (PerceptualHpmCodec, 34.0)])
def test_files_land_within_5_percent(cls, kbps, speech):
    """Seeded untrained models whose trained scale codes this speech 13-16 % away from the
    nominal rate: with the rate control, whole .ncdc files (container included) land within
    +-5 % of it, for a 4 s and a 0.5 s file and a stereo file, and decode."""
    m = tiny(cls, kbps=kbps, rate_control=True)
    assert m.set_file_rate_control(False) is True
    x = speech
    off = stream.encode_array(m, x, 16000)
    assert abs(8 * len(off) / 4.0 / 1000 / kbps - 1) > 0.1  # far off without it
    h0 = m.config_hash()
    assert m.set_file_rate_control(True) is False
    assert m.config_hash() == h0  # encoder-only: the hash (and the decoder) does not change
    t = np.arange(8000) / 16000
    am = (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t)) * np.sin(2 * np.pi * (150 + 50 * np.sin(2 * np.pi * 3 * t)) * t)
    vowel = (0.3 * am + 0.02 * np.random.default_rng(1).standard_normal(8000)).astype(np.float32)[None]
    for sig in (x, vowel, np.concatenate([x[:, :24000], x[:, 24000:48000]])):
        data = stream.encode_array(m, sig, 16000, kbps * sig.shape[0])
        rate = 8 * len(data) / (sig.shape[1] / 16000) / 1000 / sig.shape[0]
        assert abs(rate / kbps - 1) <= 0.05, (sig.shape, rate)
        y, sr = stream.decode_bytes(data, None, m)
        assert y.shape == sig.shape and np.isfinite(y).all()
    ks = [split_chunk(c)[0] for c in m.compress(x, kbps).chunks]
    assert any(k != 0 for k in ks)


def _corpus_test_files(n: int):
    """The first ``n`` speech files of the corpus16 test split, or None when it is not built
    (``$NEUROCODEC_CORPUS16``, ``corpus16/`` in the checkout or ``/work/corpus16``)."""
    for cand in (os.environ.get("NEUROCODEC_CORPUS16"), ROOT / "corpus16", "/work/corpus16"):
        if cand and (Path(cand) / "manifest.jsonl").is_file():
            from neurocodec.data.manifest import Manifest

            man = Manifest.load(Path(cand) / "manifest.jsonl").filter(split="test", source=["speech-real", "speech-tts"])
            return [sf.read(str(man.abspath(r)), dtype="float32")[0][None] for r in man.records[:n]]
    return None


SHIPPED = [(c, k) for c in ("perceptual-fem", "perceptual-hpm") for k in (9.0, 13.0, 16.0, 20.0, 24.0)]


def _assert_within_5_percent(codec_id, kbps, files):
    codec = neurocodec.load(codec_id)
    for x in files:
        data = codec.compress(x, 16000, bitrate=kbps)
        rate = 8 * len(data) / (x.shape[1] / 16000) / 1000
        assert abs(rate / kbps - 1) <= 0.05, (codec_id, kbps, x.shape, rate)
    y, _ = codec.decompress(data)
    assert y.shape == x.shape and np.isfinite(y).all()


#: the points furthest from their rate on the test split without the rate control (HPM 13 and
#: 16: -18 %) and the lowest FEM point, on two pieces of examples/speech.flac
@pytest.mark.parametrize("codec_id,kbps", [("perceptual-hpm", 13.0), ("perceptual-hpm", 16.0),
                                           ("perceptual-fem", 9.0)])
def test_shipped_points_land_within_5_percent(codec_id, kbps):
    wav, sr = audio.read_audio(ROOT / "examples" / "speech.flac")
    _assert_within_5_percent(codec_id, kbps, [wav[:, : 2 * sr], wav[:, 2 * sr: 5 * sr]])


@pytest.mark.skipif(_corpus_test_files(1) is None, reason="corpus16 (test split) is not built here")
@pytest.mark.parametrize("codec_id,kbps", SHIPPED)
def test_shipped_points_on_corpus_test_files(codec_id, kbps):
    _assert_within_5_percent(codec_id, kbps, _corpus_test_files(2))


def test_malformed_index_through_the_cli(tmp_path, capsys):
    """A stream whose chunk carries an index off the grid (CRC made valid) is a one-line error,
    exit status 2, and no output file."""
    wav, sr = audio.read_audio(ROOT / "examples" / "speech.flac")
    data = neurocodec.load("perceptual-hpm").compress(wav[:, :sr], sr, bitrate=16)
    reader = StreamReader(io.BytesIO(data))
    chunks = list(reader)
    out = io.BytesIO()
    writer = StreamWriter(out, reader.header)
    writer.chunk(bytes([GRID_OFFSET + 60]) + chunks[0][1:])
    for c in chunks[1:]:
        writer.chunk(c)
    writer.finish()
    bad = tmp_path / "bad.ncdc"
    bad.write_bytes(out.getvalue())
    dec = tmp_path / "out.wav"
    code = cli_main(["decode", str(bad), str(dec)])
    err = capsys.readouterr().err
    assert code == 2 and "rate index" in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not dec.exists()
