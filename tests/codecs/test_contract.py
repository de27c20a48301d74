"""The codec contract every registered codec keeps (codecs/base.py): the bitrate is the total
over all channels, the api hands the codec one payload budget, ``forward`` takes and returns
``(batch, channels, samples)``, the registry declares every codec once and each registered id
round-trips through the container."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import neurocodec
from neurocodec import api, baselines
from neurocodec.api import BandwidthWarning, Codec
from neurocodec.codecs import registry
from neurocodec.codecs.base import CodecModel, EncodedAudio, ForwardResult
from neurocodec.errors import BitrateError, MissingToolError, WeightsError


def _tone(channels: int, seconds: float, sr: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    rows = [0.3 * np.sin(2 * np.pi * (220 + 110 * c) * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t)) for c in range(channels)]
    noise = 0.01 * np.random.default_rng(channels).standard_normal((channels, t.size))
    return (np.stack(rows) + noise).astype(np.float32)


def _load_or_skip(codec_id: str) -> Codec:
    try:
        return neurocodec.load(codec_id)
    except MissingToolError as exc:  # a baseline whose system library is not installed
        pytest.skip(f"{codec_id}: {exc}")


# -- one registry ---------------------------------------------------------------------------------
def _ids_marked():
    """Every registered id; baselines carry the ``tools`` marker (they need system libraries)."""
    return [pytest.param(e.codec_id, marks=pytest.mark.tools) if e.is_baseline else e.codec_id
            for e in registry.entries()]


@pytest.mark.parametrize("codec_id", _ids_marked())
def test_every_registered_codec_round_trips(codec_id):
    """Every registered id: mono at the default rate and stereo at twice it, through the
    container; a learned codec without shipped weights round-trips an untrained operating point
    (and ``load`` refuses it in one line)."""
    entry = registry.get_entry(codec_id)
    if entry.learned and registry.create(codec_id).missing_weights_error() is not None:
        with pytest.raises(WeightsError) as exc:
            neurocodec.load(codec_id)
        assert "\n" not in str(exc.value) and f"neurocodec train {codec_id}" in str(exc.value)
        torch.manual_seed(0)
        cls = entry.resolve()
        codec = Codec(cls.for_bitrate(cls.default_bitrate).eval())
    else:
        codec = _load_or_skip(codec_id)
        try:
            codec.compress(_tone(1, 0.1), 16000)
        except WeightsError as exc:  # a registered model whose weights a user imports or trains (encodec-16k)
            assert "\n" not in str(exc) and ("neurocodec train" in str(exc) or "neurocodec import" in str(exc))
            return
    model = codec.model
    assert model.codec_id == codec_id
    for channels in (1, 2):
        x = _tone(channels, 0.7)
        data = codec.compress(x, 16000, bitrate=channels * model.bitrates.default)
        info = api.info(data)
        assert info.codec == codec_id and info.channels == channels
        assert info.nominal_kbps == pytest.approx(channels * model.bitrates.default, abs=1e-3)
        y, sr = codec.decompress(data)
        assert sr == 16000 and y.shape == x.shape and y.dtype == np.float32 and np.all(np.isfinite(y))


def test_registry_is_the_one_list_of_ids():
    from neurocodec.train.recipe import get_recipe

    ids = set(registry.codec_ids())
    assert set(baselines.BASELINES) == {e.codec_id for e in registry.entries() if e.is_baseline} <= ids
    assert {"opus", "amrwb", "codec2", "speex", "mp3", "lc3", "aac"} <= set(baselines.BASELINES)
    learned = [e for e in registry.entries() if e.learned]
    assert {e.codec_id for e in learned} >= {"cq", "cmrl", "lpc-cmrl"}
    for e in learned:  # weights prefix, operating points and recipe all come from the one entry
        family = registry.create(e.codec_id)
        cls = e.resolve()
        assert family.prefix == e.codec_id and family.bitrates.choices == tuple(cls.operating_points)
        recipe = get_recipe(e.codec_id).default_recipe(cls.operating_points[0])
        assert recipe.model == cls.for_bitrate(cls.operating_points[0]).config
        assert get_recipe(e.codec_id).resolve_config_cls() is cls.config_class
        assert get_recipe(e.codec_id).default_recipe().model == cls.for_bitrate(cls.default_bitrate).config
    from neurocodec.train.recipe import build_model, make_recipe

    model = build_model(make_recipe("lpc-cmrl", bitrate_kbps=8.85))  # a recipe builds the model
    assert model.codec_id == "lpc-cmrl" and model.config.lpc is not None


def test_register_keeps_its_positional_form():
    registry.register("contract-test-pcm", "neurocodec.codecs.pcm:PcmCodec", "a test registration")
    try:
        assert registry.get_entry("contract-test-pcm").summary == "a test registration"
        registry.register("contract-test-pcm", "neurocodec.codecs.pcm:PcmCodec", "a test registration")  # same: fine
        with pytest.raises(ValueError):
            registry.register("contract-test-pcm", "neurocodec.codecs.mdct:MdctCodec", "another")
    finally:
        registry._REGISTRY.pop("contract-test-pcm")


# -- the bitrate is the total over all channels -----------------------------------------------------
@pytest.mark.parametrize("codec_id,per_channel", [
    ("mdct", 16.0), ("cq", 16.0), ("cmrl", 15.85), ("pcm", 256.0),
    pytest.param("opus", 16.0, marks=pytest.mark.tools), pytest.param("amrwb", 12.65, marks=pytest.mark.tools),
    pytest.param("speex", 12.8, marks=pytest.mark.tools)])
def test_stereo_bitrate_is_the_total(codec_id, per_channel):
    codec = _load_or_skip(codec_id)
    x = _tone(2, 1.5)
    data = codec.compress(x, 16000, bitrate=2 * per_channel)
    info = api.info(data)
    assert info.nominal_kbps == pytest.approx(2 * per_channel)
    # the file carries about the total, not twice it (cmrl 15.85 runs dear on tones, see cascade_rate)
    assert info.measured_kbps < 1.45 * 2 * per_channel
    mono = api.info(codec.compress(x[:1], 16000, bitrate=per_channel))
    assert info.measured_kbps == pytest.approx(2 * mono.measured_kbps, rel=0.25)
    spec = codec.model.bitrates
    bad = per_channel if spec.choices else 1.8 * spec.minimum  # a share off the ladder / below the minimum
    with pytest.raises(BitrateError, match="per channel"):
        codec.compress(x, 16000, bitrate=bad)


def test_too_many_channels_for_the_rate_is_a_bitrate_error():
    codec = neurocodec.load("mdct")
    six = _tone(6, 0.2)
    for kbps in (8, 16):
        with pytest.raises(BitrateError, match=r"over 6 channels .* choose 48 to 192 kbps"):
            codec.compress(six, 16000, bitrate=kbps)
    info = api.info(codec.compress(six, 16000, bitrate=48))
    assert info.channels == 6 and info.nominal_kbps == 48


def test_default_bitrate_is_the_default_of_every_channel():
    codec = neurocodec.load("mdct")
    assert api.info(codec.compress(_tone(2, 0.5), 16000)).nominal_kbps == 32


def test_bitrate_error_in_the_cli(tmp_path, capsys):
    import soundfile as sf

    from neurocodec.cli import main

    wav = tmp_path / "six.wav"
    sf.write(wav, _tone(6, 0.2).T, 16000)
    assert main(["encode", str(wav), str(tmp_path / "x.ncdc"), "--bitrate", "8"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "per channel" in err and not (tmp_path / "x.ncdc").exists()


# -- payload budget -----------------------------------------------------------------------------------
@pytest.mark.parametrize("codec_id,kbps", [("mdct", 8.0), ("mdct", 24.0), ("cq", 16.0)])
@pytest.mark.parametrize("seconds", [0.4, 2.3])
def test_whole_file_fits_the_nominal_rate(codec_id, kbps, seconds, speech_path):
    wav, sr = neurocodec.audio.read_audio(speech_path)
    x = wav[:, int(1.5 * sr): int((1.5 + seconds) * sr)]
    data = neurocodec.load(codec_id).compress(x, sr, bitrate=kbps)
    nominal = kbps * 1000 / 8 * x.shape[1] / sr
    # header, end marker and chunk framing included; cq's plan may end half a step of one chunk over
    assert len(data) <= (nominal + 1 if codec_id == "mdct" else 1.02 * nominal)
    assert len(data) >= 0.9 * nominal


def test_codecs_get_a_payload_budget_not_framing():
    """A codec written to the contract (``compress(audio, bitrate_kbps=None, **kwargs)``) gets
    the budget as a keyword and may ignore it."""
    seen = {}

    class Echo(CodecModel):
        codec_id = "echo"

        def __init__(self):
            from neurocodec.codecs.base import BitrateSpec

            self.sample_rate = 16000
            self.bitrates = BitrateSpec(default=256.0, choices=(256.0,))

        def num_chunks(self, num_channels, num_samples, bitrate_kbps):
            return 1

        def compress(self, audio, bitrate_kbps=None, **kwargs):
            seen.update(kwargs, kbps=bitrate_kbps)
            return EncodedAudio([np.asarray(audio, ">f4").tobytes()], bitrate_kbps, *audio.shape)

        def decompress(self, chunks, num_channels, num_samples, bitrate_kbps):
            return np.frombuffer(b"".join(chunks), ">f4").reshape(num_channels, num_samples).astype(np.float32)

    x = _tone(2, 0.5)
    data = Codec(Echo()).compress(x, 16000, bitrate=512)
    header_and_framing = len(data) - 4 * x.size
    assert seen["kbps"] == 512 and set(seen) == {"kbps", "payload_budget_bytes"}
    assert seen["payload_budget_bytes"] == 512 * 125 * 0.5 - header_and_framing
    y, _ = Codec(Echo()).decompress(data)
    np.testing.assert_array_equal(y, x)


# -- bandwidth ------------------------------------------------------------------------------------------
def test_bandwidth_warning_once_per_input_rate():
    codec = neurocodec.load("pcm")
    x = _tone(1, 0.2, 48000)
    api._WARNED.clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        codec.compress(x, 48000)
        codec.compress(x, 48000)
        codec.compress(_tone(1, 0.2), 16000)  # the codec's own rate: nothing lost, nothing said
    msgs = [str(w.message) for w in caught if issubclass(w.category, BandwidthWarning)]
    assert len(msgs) == 1 and "8 kHz" in msgs[0] and "48000 Hz" in msgs[0]


def test_bandwidth_warning_in_the_cli(tmp_path, capsys):
    import soundfile as sf

    from neurocodec.cli import main

    wav = tmp_path / "hi.wav"
    sf.write(wav, _tone(1, 0.3, 48000).T, 48000)
    api._WARNED.clear()
    assert main(["encode", str(wav), str(tmp_path / "x.ncdc"), "--codec", "mdct", "-q"]) == 0
    err = capsys.readouterr().err
    assert err.count("neurocodec: warning:") == 1 and "keeps audio up to 8 kHz" in err and err.count("\n") == 1


def test_codecs_lists_rate_and_bandwidth(capsys):
    import json

    from neurocodec.cli import main

    assert main(["codecs", "--json"]) == 0
    rows = {r["codec"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["mdct"]["sample_rate"] == 16000 and rows["mdct"]["bandwidth_hz"] == 8000
    if rows["amrwb"]["available"]:
        assert rows["amrwb"]["bandwidth_hz"] == 7000
    if rows["codec2"]["available"]:
        assert rows["codec2"]["sample_rate"] == 8000 and rows["codec2"]["bandwidth_hz"] == 4000
    assert rows["lpc-cmrl"]["weights"] == "shipped"  # all four rates since session 8
    assert rows["opus"]["weights"] == "n/a"


# -- forward layout ------------------------------------------------------------------------------------
@pytest.mark.parametrize("codec_id", ["mdct", "pcm"])
def test_default_forward_layout(codec_id):
    model = registry.create(codec_id)
    x = torch.from_numpy(np.stack([_tone(2, 0.3), 0.5 * _tone(2, 0.3)]))
    res = model.forward(x, 2 * model.bitrates.default)
    assert isinstance(res, ForwardResult)
    assert res.audio.shape == (2, 2, 4800) and res.bits.shape == (2,) and isinstance(res.audio, torch.Tensor)
    one = model.compress(x[1].numpy(), 2 * model.bitrates.default)
    assert float(res.bits[1]) == 8 * one.num_bytes
    with pytest.raises(neurocodec.errors.AudioError):
        model.forward(x[0])


def test_learned_forward_layout():
    from neurocodec.codecs.cq import CqCodec

    torch.manual_seed(0)
    model = CqCodec.for_bitrate(16).eval()
    x = torch.from_numpy(np.stack([_tone(2, 0.25)]))
    with torch.no_grad():
        res = model(x)
    assert res.audio.shape == (1, 2, 4000) and res.bits.shape == (1,)
