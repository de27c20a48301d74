"""mdct-gen / mdct-gen-piano: the mdct bitstream decoded by sampling a SampleRNN (fejgin2020 §3)."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch

from neurocodec import api
from neurocodec.bitstream import unpack
from neurocodec.codecs.mdct import MdctCodec
from neurocodec.codecs.mdct_gen import MdctGenCodec, MdctGenPianoCodec
from neurocodec.errors import StreamError, UserError, WeightsError
from neurocodec.nn.samplernn import SampleRnn, SampleRnnConfig


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    from safetensors.torch import save_file

    torch.manual_seed(0)
    cfg = SampleRnnConfig.speech(rnn_width=8, mlp_width=8, cond_width=8)
    model = SampleRnn(cfg)
    d = tmp_path_factory.mktemp("w") / "mdct-gen-16k"
    d.mkdir()
    save_file({k: v.half().contiguous() for k, v in model.state_dict().items()}, str(d / "model.safetensors"))
    (d / "config.json").write_text(json.dumps({"model": cfg.to_dict()}))
    return d / "model.safetensors"


@pytest.fixture(scope="module")
def clip():
    rng = np.random.default_rng(0)
    t = np.arange(8000) / 16000
    x = 0.2 * np.sin(2 * np.pi * 220 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t)) + 0.01 * rng.standard_normal(t.size)
    return x[None].astype(np.float32)


def test_bitstream_is_exactly_the_mdct_stream(clip):
    gen, mdct = MdctGenCodec(), MdctCodec()
    for kbps in (8, 16, 24):
        assert gen.compress(clip, kbps).chunks == mdct.compress(clip, kbps).chunks
    assert gen.config_hash() == mdct.config_hash()
    assert MdctGenPianoCodec().config_hash() == mdct.config_hash()


def test_golden_stream_of_the_example():
    from neurocodec.audio import read_audio

    wav, sr = read_audio("examples/speech.flac")
    data = api.load("mdct-gen").compress(wav, sr, bitrate=16)
    ref = api.load("mdct").compress(wav, sr, bitrate=16)
    assert unpack(data).chunks == unpack(ref).chunks
    assert api.info(data).codec == "mdct-gen"
    assert hashlib.md5(data).hexdigest() == GOLDEN_SPEECH_16K


#: examples/speech.flac at 16 kbps through `encode --codec mdct-gen`: the mdct payload (asserted
#: equal above) in a container naming mdct-gen; changes whenever the mdct stream does
GOLDEN_SPEECH_16K = "aa3af99ebd26202f55996338c48dcd62"


def test_seed_reproducible_and_mean_of_n(tiny_weights, clip):
    c = MdctGenCodec(weights_path=tiny_weights)
    enc = c.compress(clip, 16)
    a = c.decompress(enc.chunks, 1, clip.shape[1], 16, seed=3)
    b = c.decompress(enc.chunks, 1, clip.shape[1], 16, seed=3, threads=2)
    d = c.decompress(enc.chunks, 1, clip.shape[1], 16, seed=4)
    assert a.shape == clip.shape and a.dtype == np.float32
    assert np.array_equal(a, b) and not np.array_equal(a, d)
    dec = c.decode_detailed(enc.chunks, 1, clip.shape[1])
    reals = c.generate(dec.audio[0], dec.envelope[0], 0, seed=3, realizations=3)
    assert np.array_equal(reals[0], a[0])                      # realization 0 is the single decode
    m3 = c.decompress(enc.chunks, 1, clip.shape[1], 16, seed=3, mean=3)
    np.testing.assert_allclose(m3[0], reals.mean(axis=0), atol=1e-7)
    # the mean of independent draws is closer to their conditional mean: less spread
    assert np.std(m3[0] - dec.audio[0]) < np.std(a[0] - dec.audio[0])


def test_stereo_channels_get_their_own_draws(tiny_weights, clip):
    c = MdctGenCodec(weights_path=tiny_weights)
    x = np.concatenate([clip, clip])
    enc = c.compress(x, 32)
    y = c.decompress(enc.chunks, 2, x.shape[1], 32)
    assert y.shape == x.shape and not np.array_equal(y[0], y[1])


def test_decode_option_and_weight_errors(tiny_weights, clip, tmp_path):
    c = MdctGenCodec(weights_path=tiny_weights)
    enc = c.compress(clip, 16)
    for kw in ({"mean": 0}, {"mean": 1000}, {"seed": -1}, {"seed": "x"}):
        with pytest.raises(UserError):
            c.decompress(enc.chunks, 1, clip.shape[1], 16, **kw)
    with pytest.raises(WeightsError):
        MdctGenCodec(weights_path=tmp_path / "none.safetensors").decompress(enc.chunks, 1, clip.shape[1], 16)


def test_api_decodes_an_mdct_stream_with_the_generative_codec(tiny_weights, clip, monkeypatch):
    from neurocodec.codecs import mdct_gen

    monkeypatch.setattr(mdct_gen, "WEIGHTS_DIR", tiny_weights.parent.parent)
    data = api.load("mdct").compress(clip, 16000, bitrate=16)
    y1, sr = api.decompress(data, codec="mdct-gen", seed=5)
    y2, _ = api.decompress(data, codec="mdct-gen", seed=5)
    assert sr == 16000 and np.array_equal(y1, y2)
    plain, _ = api.decompress(data)
    assert not np.array_equal(y1, plain)
    with pytest.raises(UserError):
        api.decompress(data, seed=1)                      # the mdct decoder has no seed
    with pytest.raises(StreamError):
        api.decompress(api.load("pcm").compress(clip, 16000), codec="mdct-gen")


@pytest.mark.parametrize("codec_id", ["mdct-gen", "mdct-gen-piano"])
def test_cli_decodes_an_mdct_stream_with_shipped_weights(codec_id, clip, tmp_path, capsys):
    import soundfile as sf

    from neurocodec.cli import main

    assert api.load(codec_id).model.has_trained_weights()
    src = tmp_path / "in.wav"
    sf.write(src, clip[0, :4000], 16000, subtype="PCM_16")
    enc = tmp_path / "x.ncdc"
    assert main(["encode", str(src), str(enc), "--bitrate", "16", "-q"]) == 0
    outs = {}
    for name, extra in [("a", ["--seed", "7"]), ("b", ["--seed", "7"]), ("c", ["--seed", "8"]),
                        ("m", ["--seed", "7", "--mean", "2"])]:
        out = tmp_path / f"{name}.wav"
        assert main(["decode", str(enc), str(out), "--codec", codec_id, "-q", *extra]) == 0
        outs[name] = out.read_bytes()
    assert outs["a"] == outs["b"] and outs["a"] != outs["c"] and outs["a"] != outs["m"]
    y, sr = sf.read(tmp_path / "a.wav")
    assert sr == 16000 and y.shape == (4000,)
    snr = 10 * np.log10(np.sum(clip[0, :4000] ** 2) / np.sum((clip[0, :4000] - y) ** 2))
    assert snr > 3.0   # a trained model follows the coded waveform
    # bad options: one line, exit status 2, no output file
    bad = tmp_path / "bad.wav"
    assert main(["decode", str(enc), str(bad), "--codec", codec_id, "--mean", "0"]) == 2
    assert main(["decode", str(enc), str(bad), "--seed", "1"]) == 2   # plain mdct has no seed
    assert not bad.exists()
    assert "error" in capsys.readouterr().err
