"""Parity with the reference EnCodec package (``pip install --no-deps encodec``): its models with
random weights, converted by ``codecs.encodec_import``, give identical codes and audio within 1e-5
at every bandwidth, whole-file and streaming (24 kHz) and segment by segment (48 kHz)."""

import sys
import types

import pytest
import torch


def _reference():
    if "torchaudio" not in sys.modules:  # the reference imports torchaudio at module level; no CPU build here
        ta = types.ModuleType("torchaudio")
        ta.transforms = types.ModuleType("torchaudio.transforms")
        sys.modules["torchaudio"] = ta
        sys.modules["torchaudio.transforms"] = ta.transforms
    try:
        from encodec.model import EncodecModel
    except ImportError as e:
        pytest.skip(f"reference package not installed (pip install --no-deps encodec): {e}")
    return EncodecModel


def _randomise(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.randn(p.shape, generator=g) * (0.05 if p.dim() > 1 else 0.02))
        for name, b in model.named_buffers():
            if name.endswith("embed"):
                b.copy_(torch.randn(b.shape, generator=g) * 0.3)
    return model


@pytest.fixture(scope="module")
def ref24():
    model = _randomise(_reference().encodec_model_24khz(pretrained=False), 0)
    return model.eval()


def test_24k_codes_and_audio_match_at_every_bandwidth(ref24):
    from neurocodec.codecs.encodec_import import convert_state_dict

    net = convert_state_dict(ref24.state_dict())
    x = torch.randn(1, 1, 24000 + 123, generator=torch.Generator().manual_seed(1)) * 0.3
    for bw in ref24.target_bandwidths:
        ref24.set_target_bandwidth(bw)
        with torch.no_grad():
            (ref_codes, _), = ref24.encode(x)
            ref_audio = ref24.decode([(ref_codes, None)])
        frames = net.encode(x, net.cfg.n_q_for(bw))
        assert torch.equal(frames[0].codes, ref_codes), bw
        audio = net.decode(frames)
        assert audio.shape == ref_audio.shape
        assert (audio - ref_audio).abs().max().item() < 1e-5, bw


def test_24k_streaming_matches_reference(ref24):
    from neurocodec.codecs.encodec_import import convert_state_dict
    from neurocodec.codecs.encodec_model import StreamingDecoder, StreamingEncoder

    net = convert_state_dict(ref24.state_dict())
    x = torch.randn(1, 1, 9000, generator=torch.Generator().manual_seed(2)) * 0.3
    for bw in (1.5, 6.0, 24.0):
        ref24.set_target_bandwidth(bw)
        with torch.no_grad():
            (ref_codes, _), = ref24.encode(x)
            ref_audio = ref24.decode([(ref_codes, None)])[0]
        enc = StreamingEncoder(net, net.cfg.n_q_for(bw))
        pieces, pos = [], 0
        for n in [1, 7, 320, 100, 2000, 333] * 10:
            if pos >= x.shape[-1]:
                break
            pieces.append(enc.push(x[0, :, pos:pos + n]))
            pos += n
        pieces.append(enc.push(x[0, :, pos:], final=True))
        codes = torch.cat(pieces, -1)
        assert torch.equal(codes, ref_codes[0]), bw
        dec = StreamingDecoder(net)
        outs = [dec.push(codes[:, i:i + 1]) for i in range(codes.shape[-1])]
        outs.append(dec.push(codes[:, :0], final=True))
        audio = torch.cat(outs, -1)
        assert audio.shape == ref_audio.shape
        assert (audio - ref_audio).abs().max().item() < 1e-5, bw


def test_48k_segments_match_reference():
    from neurocodec.codecs.encodec_import import convert_state_dict

    ref = _randomise(_reference().encodec_model_48khz(pretrained=False), 3).eval()
    net = convert_state_dict(ref.state_dict())
    assert net.cfg.sample_rate == 48000 and net.cfg.seanet.channels == 2
    x = torch.randn(1, 2, 48000 + 9000, generator=torch.Generator().manual_seed(4)) * 0.2
    for bw in ref.target_bandwidths:
        ref.set_target_bandwidth(bw)
        with torch.no_grad():
            ref_frames = ref.encode(x)
            ref_audio = ref.decode(ref_frames)
        frames = net.encode(x, net.cfg.n_q_for(bw))
        assert len(frames) == len(ref_frames)
        for f, (c, s) in zip(frames, ref_frames):
            assert torch.equal(f.codes, c)
            assert torch.allclose(f.scale, s, rtol=0, atol=0)
        audio = net.decode(frames)
        assert (audio - ref_audio).abs().max().item() < 1e-5, bw


def test_wrong_checkpoint_is_rejected(ref24):
    from neurocodec.codecs.encodec_import import convert_state_dict
    from neurocodec.errors import WeightsError

    sd = dict(ref24.state_dict())
    sd.pop("decoder.model.0.conv.conv.bias")
    with pytest.raises(WeightsError):
        convert_state_dict(sd)
    with pytest.raises(WeightsError):
        convert_state_dict({"foo": torch.zeros(1)})


def test_lm_matches_reference_lm():
    _reference()
    from encodec.model import LMModel

    from neurocodec.codecs.encodec_lm import CodeLM, convert_reference_lm

    torch.manual_seed(0)
    ref = LMModel(n_q=4, card=32, dim=40, num_layers=2, past_context=10).eval()
    lm = convert_reference_lm(ref.state_dict())
    lm.past_context = 10
    codes = torch.randint(0, 32, (1, 4, 30))
    inputs = CodeLM.inputs_for(codes)
    with torch.no_grad():
        probs, _, _ = ref(inputs)  # (B, card, K, T)
        mine = torch.softmax(lm(inputs), -1).permute(0, 3, 1, 2)
    assert (probs - mine).abs().max().item() < 1e-5


def test_import_command_and_official_codec(ref24, tmp_path):
    _reference()
    import numpy as np
    from encodec.model import LMModel

    from neurocodec import api
    from neurocodec.cli import main

    torch.save(ref24.state_dict(), tmp_path / "encodec_24khz.th")
    torch.manual_seed(0)
    lm = LMModel(n_q=32, card=1024, dim=200, num_layers=5, past_context=262)
    torch.save(lm.state_dict(), tmp_path / "encodec_lm_24khz.th")
    out = tmp_path / "w"
    assert main(["import", "encodec", str(tmp_path / "encodec_24khz.th"), "--lm",
                 str(tmp_path / "encodec_lm_24khz.th"), "--out", str(out)]) == 0
    codec = api.load("encodec-24k-official", weights_dir=out)
    x = (np.random.default_rng(0).standard_normal((1, 6000)) * 0.2).astype(np.float32)
    enc = codec.model.compress(x, 3.0)
    assert enc.chunks[0][0] == 2  # LM-coded by default when the model has its LM
    y = codec.model.decompress(enc.chunks, 1, x.shape[1], 3.0)
    ref24.set_target_bandwidth(3.0)
    with torch.no_grad():
        (codes, _), = ref24.encode(torch.from_numpy(x)[None])
        ref = ref24.decode([(codes, None)])[0, :, :x.shape[1]].numpy()
    assert np.abs(y - ref).max() < 1e-4
    assert main(["import", "encodec", str(tmp_path / "encodec_lm_24khz.th"), "--out", str(out)]) == 2
    assert main(["import", "encodec", str(tmp_path / "missing.th")]) == 2
