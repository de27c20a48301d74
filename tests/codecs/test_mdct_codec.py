"""The ``mdct`` codec (fejgin2020 §3.1): round trips, exact lengths, rate control and bitrate
accuracy, quality ordering, determinism (golden md5), corrupt-payload detection."""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import pytest
import soundfile as sf

from neurocodec.codecs import create
from neurocodec.codecs.mdct import (
    MdctCodec,
    MdctConfig,
    MdctTables,
    load_tables,
    model_tables,
    select_offset,
    tables_path,
)
from neurocodec.errors import AudioError, BitrateError, CorruptStreamError, WeightsError

# md5 of b"".join(chunks) for examples/speech.flac at 16 kbps with the payload budget of the
# version-1 encoder (nominal rate less 64 bits per chunk; update only with a codec_version bump)
GOLDEN_SPEECH_16K_MD5 = "f6f8526edd1763ea5c6899791e55972a"


@pytest.fixture(scope="module")
def codec() -> MdctCodec:
    return MdctCodec()


def _load(path) -> np.ndarray:
    x, sr = sf.read(str(path), dtype="float32", always_2d=True)
    assert sr == 16000
    return np.ascontiguousarray(x.T)


@pytest.fixture(scope="module")
def speech(request) -> np.ndarray:
    from pathlib import Path
    return _load(Path(__file__).resolve().parents[2] / "examples" / "speech.flac")


@pytest.fixture(scope="module")
def music() -> np.ndarray:
    from pathlib import Path
    return _load(Path(__file__).resolve().parents[2] / "examples" / "music.flac")


def _measured_kbps(chunks, num_samples) -> float:
    """Payload plus the container's 64 framing bits per chunk, per second."""
    bits = 8 * sum(len(c) for c in chunks) + 64 * len(chunks)
    return bits / (num_samples / 16000) / 1000


def _snr_db(ref, deg) -> float:
    return float(10 * np.log10(np.sum(ref.astype(np.float64) ** 2) / np.sum((ref - deg).astype(np.float64) ** 2)))


def test_registered_and_described():
    c = create("mdct")
    assert isinstance(c, MdctCodec)
    assert c.codec_id == "mdct" and c.sample_rate == 16000
    assert c.bitrates.default == 16 and c.bitrates.minimum == 8 and c.bitrates.maximum == 32


def test_shipped_tables_belong_to_default_config(codec):
    assert tables_path().exists()
    import json
    doc = json.loads(tables_path().read_text())
    assert doc["config"] == MdctConfig().table_key()
    assert codec.tables.to_dict() == doc["tables"]
    assert codec.tables != model_tables(codec.config)


@pytest.mark.parametrize("length", [1, 7, 319, 320, 321, 4001, 16000 * 2 + 17])
def test_round_trip_exact_length_mono(codec, length):
    x = (0.1 * np.random.default_rng(length).standard_normal((1, length))).astype(np.float32)
    enc = codec.compress(x, 16)
    assert enc.num_channels == 1 and enc.num_samples == length and enc.bitrate_kbps == 16
    assert all(len(c) > 0 for c in enc.chunks)
    y = codec.decompress(enc.chunks, 1, length, 16)
    assert y.shape == (1, length) and y.dtype == np.float32
    assert np.all(np.isfinite(y))


def test_round_trip_stereo_and_alignment(codec, speech):
    x = np.stack([speech[0, :16000 * 2 + 5], 0.5 * speech[0, 8000:8000 + 16000 * 2 + 5]])
    enc = codec.compress(x, 32)
    y = codec.decompress(enc.chunks, 2, x.shape[1], 32)
    assert y.shape == x.shape
    # each channel is reconstructed in place (no delay, no channel swap)
    for c in range(2):
        assert _snr_db(x[c], y[c]) > 8.0
    assert _snr_db(x[0], y[1]) < 1.0
    # each channel gets half the rate: the stream as a whole still hits the target
    assert _measured_kbps(enc.chunks, x.shape[1]) == pytest.approx(32, rel=0.03)


def test_streaming_decode_equals_detailed_decode_and_encoder_decisions(codec, speech):
    x = speech[:, :16000 * 3 + 100]
    a = codec.analyze(x, 24)
    d = codec.decode_detailed(a.chunks, 1, x.shape[1])
    np.testing.assert_array_equal(codec.decompress(a.chunks, 1, x.shape[1], 24), d.audio)
    for name in ("envelope", "i_offset", "quantizers", "quantized", "frame_bits"):
        np.testing.assert_array_equal(getattr(a, name), getattr(d, name), err_msg=name)
    # m_n = clip(i_env - i_offset, 0, M), and bands at m_0 carry no quantized lines
    m = np.clip(d.envelope - d.i_offset[..., None], 0, codec.config.num_quantizers)
    np.testing.assert_array_equal(m, d.quantizers)
    assert d.coefficients.shape == (1, a.envelope.shape[1], 320)
    # the encoder's cost model is exact: every frame took the bits its cost curve predicted
    env, curves = codec.cost_curves(a.coefficients[0])
    np.testing.assert_array_equal(env, a.envelope[0])
    r = env.max(axis=1) - a.i_offset[0]
    np.testing.assert_array_equal(curves[np.arange(r.size), r], a.frame_bits[0])
    assert np.all(a.frame_bits[0] <= np.maximum(a.budgets[0], curves[:, 0]))


def test_select_offset_is_the_binary_search_of_the_paper():
    rng = np.random.default_rng(3)
    curve = np.cumsum(rng.integers(0, 40, 96)).astype(float) + 30
    curve[80:] = np.inf
    for budget in [0, 29, 30, 31, 500, 1000, 1e9]:
        r = select_offset(curve, budget)
        feasible = np.flatnonzero(curve <= budget)
        assert r == (feasible.max() if feasible.size else 0)
    # a dip in the cost does not break the search: the result still fits the budget
    dip = curve.copy()
    dip[10] = dip[9] - 5
    r = select_offset(dip, dip[12] + 0.5)
    assert r == 12 and dip[r] <= dip[12] + 0.5


def test_rate_control_is_monotonic_in_the_budget(codec, speech):
    x = speech[:, :16000 * 2]
    env, curves = codec.cost_curves(codec.analyze(x, 16).coefficients[0])
    budgets = np.arange(40, 1400, 20)
    for j in range(0, curves.shape[0], 7):
        rs = [select_offset(curves[j], b) for b in budgets]
        assert np.all(np.diff(rs) >= 0)  # more bits -> smaller i_offset
        costs = [curves[j][r] for r, b in zip(rs, budgets)]
        assert np.all(np.diff(costs) >= 0)
        assert all(c <= b for c, b in zip(costs, budgets) if curves[j][0] <= b)
    # across whole signals: more bitrate -> lower i_offset and finer quantizers on average
    means = [codec.analyze(x, k) for k in (8, 16, 32)]
    offs = [a.i_offset.mean() for a in means]
    ms = [a.quantizers.mean() for a in means]
    assert offs[0] > offs[1] > offs[2] and ms[0] < ms[1] < ms[2]


@pytest.mark.parametrize("which", ["speech", "music"])
@pytest.mark.parametrize("kbps", [8, 16, 24, 32])
def test_measured_bitrate_within_3_percent(codec, which, kbps, request):
    x = request.getfixturevalue(which)
    enc = codec.compress(x, kbps)
    assert _measured_kbps(enc.chunks, x.shape[1]) == pytest.approx(kbps, rel=0.03)


def test_odd_bitrate_in_range(codec, speech):
    x = speech[:, :16000 * 3]
    enc = codec.compress(x, 11.3)
    assert _measured_kbps(enc.chunks, x.shape[1]) == pytest.approx(11.3, rel=0.03)


def test_pesq_increases_with_bitrate_on_speech(codec, speech):
    pesq = pytest.importorskip("pesq")
    x = speech[0, :16000 * 4]
    scores = []
    for kbps in (8, 16, 24, 32):
        enc = codec.compress(x[None], kbps)
        y = codec.decompress(enc.chunks, 1, x.size, kbps)[0]
        scores.append(pesq.pesq(16000, x, y, "wb"))
    assert all(b > a for a, b in zip(scores, scores[1:])), scores
    assert scores[0] > 1.5 and scores[-1] > 3.5, scores


def test_deterministic_and_golden_md5(codec, speech):
    n = speech.shape[1]
    budget = (16 * 1000 * n / 16000 - 64 * codec.num_chunks(1, n, 16)) / 8  # what version 1 budgeted
    enc1 = codec.compress(speech, 16, payload_budget_bytes=budget)
    enc2 = MdctCodec().compress(speech.copy(), 16, payload_budget_bytes=budget)
    assert enc1.codec_version == 1  # no silent chunk: a version-1 payload
    assert enc1.chunks == enc2.chunks
    y1 = codec.decompress(enc1.chunks, 1, speech.shape[1], 16)
    y2 = codec.decompress(enc2.chunks, 1, speech.shape[1], 16)
    np.testing.assert_array_equal(y1, y2)  # noise filling is seeded by the frame index
    assert hashlib.md5(b"".join(enc1.chunks)).hexdigest() == GOLDEN_SPEECH_16K_MD5


def test_silence_and_loud_input(codec):
    silent = np.zeros((1, 8000), dtype=np.float32)
    enc = codec.compress(silent, 8)
    y = codec.decompress(enc.chunks, 1, 8000, 8)
    assert np.max(np.abs(y)) < 1e-3
    # far beyond full scale, with strong tones: exercises the escape codes
    t = np.arange(16000) / 16000
    loud = (6.0 * np.sin(2 * np.pi * 300 * t) + 3.0 * np.sign(np.sin(2 * np.pi * 1234 * t))).astype(np.float32)
    a = codec.analyze(loud[None], 32)
    d = codec.decode_detailed(a.chunks, 1, loud.size)
    np.testing.assert_array_equal(a.quantized, d.quantized)
    assert _snr_db(loud, d.audio[0]) > 15


def test_digital_silence_costs_a_byte_per_chunk_and_decodes_to_zeros():
    import neurocodec

    minute = np.zeros((1, 60 * 16000), dtype=np.float32)
    data = neurocodec.load("mdct").compress(minute, 16000, bitrate=16)
    info = neurocodec.api.info(data)
    # 3001 frames in 61 chunks of one byte each; header, end marker and chunk framing: 608 bytes
    assert info.codec_version == 2 and info.payload_bytes == info.num_chunks == 61
    assert info.measured_kbps < 0.1
    y, sr = neurocodec.api.decompress(data)
    assert sr == 16000 and y.shape == minute.shape and not np.any(y)


def test_silent_chunks_between_sound(codec, speech):
    """A silent second inside speech: that chunk is one byte and the frames around it still
    overlap-add correctly (the silent chunk's output is exactly the neighbours' tails)."""
    x = np.zeros((2, 16000 * 3), dtype=np.float32)
    x[0, :15000] = speech[0, :15000]
    x[1, :15000] = 0.5 * speech[0, 20000:35000]
    x[:, 32320:] = speech[0, 40000:40000 + 16000 * 3 - 32320]
    a = codec.analyze(x, 32)
    assert a.chunks[1] == b"\x00" and len(a.chunks[0]) > 100 and len(a.chunks[2]) > 100
    y = codec.decompress(a.chunks, 2, x.shape[1], 32)
    d = codec.decode_detailed(a.chunks, 2, x.shape[1])
    np.testing.assert_array_equal(y, d.audio)
    assert not np.any(d.coefficients[:, 50:100])  # the silent chunk's frames
    assert not np.any(y[:, 16320:31680])  # away from the neighbours' overlap
    for c in range(2):
        assert _snr_db(x[c, :15000], y[c, :15000]) > 8.0


def test_noise_fill_is_seeded_by_frame_index(speech):
    c = MdctCodec(dataclasses.replace(MdctConfig(), noise_fill=0.5))
    enc = c.compress(speech[:, :16000], 8)
    d = c.decode_detailed(enc.chunks, 1, 16000)
    zero = d.quantizers[0] == 0
    assert zero.any()
    # filled bands are not silent, and two decodes agree exactly
    lines = np.repeat(zero, np.diff(c.config.band_edges), axis=1)
    assert np.all(np.abs(d.coefficients[0][lines]) > 0)
    np.testing.assert_array_equal(c.decompress(enc.chunks, 1, 16000, 8), d.audio)


def test_bad_input_raises_user_errors(codec):
    with pytest.raises(AudioError):
        codec.compress(np.zeros(100, dtype=np.float32), 16)  # 1-D
    with pytest.raises(AudioError):
        codec.compress(np.zeros((1, 0), dtype=np.float32), 16)
    with pytest.raises(AudioError):
        codec.compress(np.full((1, 100), np.nan, dtype=np.float32), 16)
    for kbps in (7.9, 32.5, -1):
        with pytest.raises(BitrateError):
            codec.compress(np.zeros((1, 100), dtype=np.float32), kbps)


def test_corrupt_payloads_are_detected(codec, speech):
    x = speech[:, :16000 * 2 + 400]
    enc = codec.compress(x, 16)
    n = x.shape[1]
    chunks = enc.chunks
    assert len(chunks) == 3
    with pytest.raises(CorruptStreamError):  # a chunk missing
        codec.decompress(chunks[:-1], 1, n, 16)
    with pytest.raises(CorruptStreamError):  # one chunk too many
        codec.decompress(chunks + [chunks[-1]], 1, n, 16)
    with pytest.raises(CorruptStreamError):  # bits left over
        codec.decompress([chunks[0] + b"\x00"] + chunks[1:], 1, n, 16)
    with pytest.raises(CorruptStreamError):  # bits missing
        codec.decompress([chunks[0][:-2]] + chunks[1:], 1, n, 16)
    with pytest.raises(CorruptStreamError):  # header says stereo: the frames run out
        codec.decompress(chunks, 2, n, 16)
    with pytest.raises(CorruptStreamError):
        codec.decompress(chunks, 1, 0, 16)
    garbage = bytes(np.random.default_rng(0).integers(0, 256, len(chunks[0]), dtype=np.uint8))
    with pytest.raises(CorruptStreamError):
        codec.decompress([garbage] + chunks[1:], 1, n, 16)


def test_tables_serialise_and_are_checked():
    cfg = MdctConfig()
    tables = load_tables(cfg)
    assert MdctTables.from_dict(tables.to_dict()) == tables
    with pytest.raises(WeightsError):
        MdctCodec(dataclasses.replace(cfg, num_quantizers=31, quantizer_layout=cfg.quantizer_layout[:31]),
                  tables=tables)
    with pytest.raises(WeightsError):
        MdctTables.from_dict({"envelope": [1, 1]})
    # a custom configuration falls back to model tables, and its streams carry another hash
    other = MdctCodec(dataclasses.replace(cfg, step_1=3.0))
    assert other.config_hash() != MdctCodec().config_hash()
    assert MdctCodec(dataclasses.replace(cfg, noise_fill=0.1)).config_hash() != MdctCodec().config_hash()


def test_missing_or_broken_table_file(monkeypatch, tmp_path):
    import neurocodec.codecs.mdct_tables as mod  # where load_tables finds tables_path

    monkeypatch.setattr(mod, "tables_path", lambda: tmp_path / "missing.json")
    with pytest.raises(WeightsError, match="missing"):
        MdctCodec()
    custom = dataclasses.replace(MdctConfig(), step_1=3.0)
    assert MdctCodec(custom).tables == model_tables(custom)
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    monkeypatch.setattr(mod, "tables_path", lambda: broken)
    with pytest.raises(WeightsError):
        MdctCodec()
