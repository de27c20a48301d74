"""The non-streamable 48 kHz EnCodec codec (codecs/encodec48.py) against the reference package
(``pip install --no-deps encodec``, torchaudio stubbed): its 48 kHz model with random weights,
imported with ``neurocodec import encodec``, codes to the reference's codes and scales and decodes
to its audio within 1e-5, whole-file and pushed through the segment API in odd pieces."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from test_encodec_parity import _randomise, _reference  # noqa: E402


@pytest.fixture(scope="module")
def ref48():
    return _randomise(_reference().encodec_model_48khz(pretrained=False), 3).eval()


@pytest.fixture(scope="module")
def imported(ref48, tmp_path_factory):
    """The reference model (and a small LM of the reference's class) through ``neurocodec import encodec``."""
    from encodec.model import LMModel

    from neurocodec import api
    from neurocodec.cli import main
    from neurocodec.codecs.encodec48 import Encodec48Codec, Encodec48Config

    d = tmp_path_factory.mktemp("enc48")
    torch.save(ref48.state_dict(), d / "encodec_48khz.th")
    torch.manual_seed(0)
    torch.save(LMModel(n_q=16, card=1024, dim=16, num_layers=1, past_context=525).state_dict(), d / "lm48.th")
    assert main(["import", "encodec", str(d / "encodec_48khz.th"), "--lm", str(d / "lm48.th"),
                 "--out", str(d / "lm")]) == 0
    with_lm = api.load("encodec-48k-official", weights_dir=d / "lm").model.model
    plain = Encodec48Codec(Encodec48Config(), codec_id="encodec-48k-official")  # the same network, no LM
    plain.net.load_state_dict(with_lm.net.state_dict())
    return plain.eval(), with_lm, d


def _signal(n=48000 + 5000, seed=4):
    return (torch.randn(2, n, generator=torch.Generator().manual_seed(seed)) * 0.2).numpy()


def _reference_coding(ref, x, bw):
    ref.set_target_bandwidth(bw)
    with torch.no_grad():
        frames = ref.encode(torch.from_numpy(x)[None])
        audio = ref.decode(frames)[0, :, :x.shape[1]].numpy()
    return frames, audio


def _chunk_codes(codec, chunks, bw):
    from neurocodec.codecs.encodec48 import SegmentDecoder

    dec = SegmentDecoder(codec, 2, bw)
    return [dec._read(c) for c in chunks]


def _check(codec, ref, x, bw):
    from neurocodec.codecs.encodec48 import SegmentDecoder, SegmentEncoder

    frames, ref_audio = _reference_coding(ref, x, bw)
    enc = codec.compress(x, bw)
    assert len(enc.chunks) == len(frames)
    for (codes, scale), (rc, rs) in zip(_chunk_codes(codec, enc.chunks, bw), frames):
        assert np.array_equal(codes, rc[0].numpy())
        assert scale == float(rs)  # the f32 scale travels exactly
    y = codec.decompress(enc.chunks, 2, x.shape[1], bw)
    assert y.shape == x.shape and np.abs(y - ref_audio).max() < 1e-5, bw
    # chunked: odd push sizes give the same chunks, chunk-by-chunk decoding the same audio
    se, pos, chunks = SegmentEncoder(codec, 2, bw), 0, []
    for n in [1, 30000, 777, 20000, 48000, 5]:
        chunks += se.push(x[:, pos:pos + n])
        pos += n
    chunks += se.push(x[:, pos:]) + se.finish()
    assert chunks == enc.chunks
    sd = SegmentDecoder(codec, 2, bw)
    pieces = [sd.push(c) for c in chunks] + [sd.finish()]
    assert pieces[0].shape[1] == codec.segment_stride  # a segment's audio is out as soon as it is final
    assert np.array_equal(np.concatenate(pieces, 1)[:, :x.shape[1]], y)


def test_48k_codec_matches_reference(imported, ref48):
    plain, _, _ = imported
    _check(plain, ref48, _signal(), 6.0)


@pytest.mark.slow
def test_48k_codec_matches_reference_at_every_bandwidth(imported, ref48):
    plain, _, _ = imported
    x = _signal(3 * 48000 + 123, seed=5)
    for bw in ref48.target_bandwidths:
        _check(plain, ref48, x, bw)


def test_48k_lm_coding_round_trips_and_mono(imported):
    plain, with_lm, _ = imported
    x = _signal(48000 + 700, seed=6)
    a = plain.compress(x, 3.0)
    b = with_lm.compress(x, 3.0)
    assert a.chunks[0][0] == 0 and b.chunks[0][0] == 2  # uniform without an LM, the LM when imported with one
    assert [c.tolist() for c, _ in _chunk_codes(plain, a.chunks, 3.0)] == \
        [c.tolist() for c, _ in _chunk_codes(with_lm, b.chunks, 3.0)]
    assert np.array_equal(plain.decompress(a.chunks, 2, x.shape[1], 3.0),
                          with_lm.decompress(b.chunks, 2, x.shape[1], 3.0))
    # mono: coded as two equal channels, decoded as their mean
    m = plain.compress(x[:1], 3.0)
    ym = plain.decompress(m.chunks, 1, x.shape[1], 3.0)
    ys = plain.decompress(plain.compress(np.repeat(x[:1], 2, 0), 3.0).chunks, 2, x.shape[1], 3.0)
    assert ym.shape == (1, x.shape[1]) and np.allclose(ym[0], ys.mean(0), atol=1e-6)


def test_48k_errors(imported, tmp_path):
    from neurocodec import api
    from neurocodec.cli import main
    from neurocodec.errors import AudioError, BitrateError, CorruptStreamError, WeightsError

    plain, _, d = imported
    x = _signal(20000)
    enc = plain.compress(x, 6.0)
    with pytest.raises(CorruptStreamError):
        plain.decompress([enc.chunks[0][:5]], 2, x.shape[1], 6.0)
    with pytest.raises(CorruptStreamError):  # one segment too many for the header's length
        plain.decompress(enc.chunks * 2, 2, x.shape[1], 6.0)
    bad = bytearray(enc.chunks[0])
    bad[1] = 3  # n_q of another bandwidth
    with pytest.raises(CorruptStreamError):
        plain.decompress([bytes(bad)], 2, x.shape[1], 6.0)
    with pytest.raises(BitrateError):
        plain.compress(x, 5.0)
    with pytest.raises(AudioError):
        plain.compress(np.zeros((3, 100), np.float32), 6.0)
    missing = api.load("encodec-48k-official", weights_dir=tmp_path / "none")
    with pytest.raises(WeightsError, match="neurocodec import encodec"):
        missing.compress(x, 6.0)
    # a 24 kHz LM with the 48 kHz model is refused (exit 2, nothing written)
    from encodec.model import LMModel

    torch.save(LMModel(n_q=32, card=1024, dim=16, num_layers=1).state_dict(), tmp_path / "lm24.th")
    assert main(["import", "encodec", str(d / "encodec_48khz.th"), "--lm", str(tmp_path / "lm24.th"),
                 "--out", str(tmp_path / "x")]) == 2
    assert not (tmp_path / "x" / "model.safetensors").exists()
