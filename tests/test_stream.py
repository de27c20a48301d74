"""Coding block by block: same bytes as whole-signal coding for known lengths, streams of
unknown length (format version 2), segments, resampling, pipes that decode before input ends."""

import io
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import soundfile as sf

import neurocodec
from neurocodec import errors
from neurocodec import api, audio, stream
from neurocodec.bitstream import StreamHeader, pack, unpack
from neurocodec.codecs.pcm import PcmCodec
from neurocodec.codecs.registry import create

CLI = [sys.executable, "-m", "neurocodec"]


def _signal(seconds: float, rate: int = 16000, channels: int = 1, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    x = [0.3 * np.sin(2 * np.pi * (200 + 50 * c) * t) + 0.02 * rng.standard_normal(t.size) for c in range(channels)]
    return np.asarray(x, dtype=np.float32)


def _encode_blocks(model, x, rate, known: bool, block: int, bitrate=None) -> bytes:
    buf = io.BytesIO()
    enc = stream.Encoder(model, buf, rate, x.shape[0], x.shape[1] if known else None, bitrate)
    for s in range(0, x.shape[1], block):
        enc.write(x[:, s:s + block])
    enc.close()
    return buf.getvalue()


@pytest.mark.parametrize("block", [7, 1000, 16000, 100000])
def test_mdct_blocks_give_the_bytes_of_compress(block):
    model = create("mdct")
    x = _signal(2.3, channels=2)
    budget = stream.payload_budget(model, 16.0, x.shape[0], x.shape[1], 16000, x.shape[1])
    whole = model.compress(x, 16.0, payload_budget_bytes=budget)  # the budget the stream layer hands it
    header_free = _encode_blocks(model, x, 16000, True, block, 16.0)
    assert unpack(header_free).chunks == whole.chunks


def test_unknown_length_is_version_2_and_decodes():
    model = create("mdct")
    x = _signal(3.7)
    data = _encode_blocks(model, x, 16000, False, 4000, 16.0)
    s = unpack(data)
    assert s.header.format_version == 2 and s.header.length_at_end
    assert s.header.num_samples == x.shape[1] and not s.segments
    y, sr = api.decompress(data)
    assert sr == 16000 and y.shape == x.shape
    snr = 10 * np.log10(np.sum(x ** 2) / np.sum((x - y) ** 2))
    assert snr > 10
    assert abs(8 * len(data) / 3.7 / 1000 - 16) < 0.5


def test_pcm_unknown_length_round_trip_is_exact():
    model = create("pcm")
    x = np.round(_signal(2.5, channels=2) * 32768) / 32768
    data = _encode_blocks(model, x, 16000, False, 3000)
    y, _ = api.decompress(data)
    assert np.array_equal(y, x)


def test_streamed_resampling_matches_one_shot():
    # what api.compress did before streaming: soxr on the whole signal, then the codec
    x = _signal(1.3, rate=44100, channels=2)
    model = create("pcm")
    y = audio.resample(x, 44100, 16000)
    header = StreamHeader("pcm", model.codec_version, model.stream_config_hash(256.0), 44100, 16000, 2,
                          x.shape[1], y.shape[1], 512000)  # the total over both channels
    expected = pack(header, model.compress(y, 512.0).chunks)
    assert neurocodec.load("pcm").compress(x, 44100) == expected
    assert _encode_blocks(model, x, 44100, True, 999) == expected
    # and decoding resamples back to exactly the original length, as a one-shot would
    out, sr = api.decompress(expected)
    ref = audio.fit_length(audio.resample(model.decompress(unpack(expected).chunks, 2, y.shape[1], 512.0),
                                          16000, 44100), x.shape[1])
    assert sr == 44100 and np.array_equal(out, ref)


class SegmentedPcm(PcmCodec):
    """pcm without its incremental coder: coded in segments like cq, cmrl and the baselines."""

    stream_encoder = None
    stream_decoder = None


@pytest.mark.parametrize("known", [True, False])
def test_segmented_codec_round_trip(monkeypatch, known):
    monkeypatch.setattr(stream, "SEGMENT_SECONDS", 0.5)
    model = SegmentedPcm()
    x = np.round(_signal(1.6) * 32768) / 32768
    data = _encode_blocks(model, x, 16000, known, 3001)
    s = unpack(data)
    assert s.header.format_version == 2 and s.header.segmented and s.header.length_at_end == (not known)
    assert [n for _, n in s.segments] == [8000, 8000, 8000, 1600]
    y, _ = stream.decode_bytes(data, model=model)
    assert np.array_equal(y, x)
    info = api.info(data)
    assert info.num_segments == 4 and info.num_samples == x.shape[1]


def test_short_segmented_stream_stays_version_1(monkeypatch):
    model = SegmentedPcm()
    x = _signal(0.4)
    data = _encode_blocks(model, x, 16000, True, 1000)
    assert data[4] == 1 and data == pack(unpack(data).header, model.compress(x).chunks)


def test_version_1_golden_stream_decodes_as_before(speech_path):
    # a version-1 mdct file decodes through the streaming decoder exactly as through decompress
    wav, sr = audio.read_audio(speech_path)
    data = neurocodec.load("mdct").compress(wav, sr, bitrate=16)
    assert data[4] == 1
    s = unpack(data)
    model = create("mdct")
    ref = model.decompress(s.chunks, 1, s.header.codec_num_samples, 16.0)
    y, _ = api.decompress(data)
    assert np.array_equal(y, ref)


def test_empty_and_nonfinite_input_rejected():
    model = create("mdct")
    enc = stream.Encoder(model, io.BytesIO(), 16000, 1, None)
    with pytest.raises(errors.AudioError):
        enc.close()
    enc = stream.Encoder(model, io.BytesIO(), 16000, 1, None)
    with pytest.raises(errors.AudioError):
        enc.write(np.full((1, 10), np.nan, dtype=np.float32))


def test_truncated_stream_from_pipe_is_an_error():
    data = _encode_blocks(create("mdct"), _signal(2.2), 16000, False, 5000)
    for n in (len(data) - 1, len(data) // 2):
        with pytest.raises(errors.StreamError):
            stream.decode_bytes(data[:n])


# -- pipes --------------------------------------------------------------------------------------

def _wav_bytes(x, rate=16000):
    buf = io.BytesIO()
    sf.write(buf, x.T, rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def test_wav_pipe_round_trip_through_the_cli():
    x = _signal(2.5)
    enc = subprocess.run(CLI + ["encode", "-", "-", "--codec", "mdct", "--bitrate", "16", "-q"],
                         input=_wav_bytes(x), capture_output=True, check=True)
    dec = subprocess.run(CLI + ["decode", "-", "-", "-q"], input=enc.stdout, capture_output=True, check=True)
    y, sr = sf.read(io.BytesIO(dec.stdout), dtype="float32")
    assert sr == 16000 and y.shape == (x.shape[1],)


def test_raw_pipe_round_trip_through_the_cli():
    q = (np.round(_signal(1.2, channels=2) * 32767)).astype("<i2")
    raw = q.T.tobytes()
    enc = subprocess.run(CLI + ["encode", "-", "-", "--codec", "pcm", "--raw-format", "s16le", "--raw-rate", "16000",
                                "--raw-channels", "2", "-q"], input=raw, capture_output=True, check=True)
    dec = subprocess.run(CLI + ["decode", "-", "-", "--raw-format", "s16le", "-q"], input=enc.stdout,
                         capture_output=True, check=True)
    assert dec.stdout == raw


def test_decoder_output_starts_before_the_encoder_input_ends():
    """arecord | encode - - | decode - - | aplay: audio comes out while the input is still open."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    enc = subprocess.Popen(CLI + ["encode", "-", "-", "--codec", "mdct", "--bitrate", "16", "-q", "--raw-format",
                                  "s16le"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
    dec = subprocess.Popen(CLI + ["decode", "-", "-", "-q", "--raw-format", "s16le"], stdin=enc.stdout,
                           stdout=subprocess.PIPE, env=env)
    enc.stdout.close()
    got = bytearray()

    def read():
        while True:
            b = dec.stdout.read1(65536) if hasattr(dec.stdout, "read1") else dec.stdout.read(4096)
            if not b:
                return
            got.extend(b)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    x = (np.round(_signal(6.0) * 32767)).astype("<i2")
    enc.stdin.write(x[0, :16000 * 4].tobytes())  # 4 s of audio, input left open
    enc.stdin.flush()
    deadline = time.monotonic() + 60
    while len(got) < 2 * 16000 and time.monotonic() < deadline:  # at least 1 s decoded
        time.sleep(0.1)
    early = len(got)
    enc.stdin.write(x[0, 16000 * 4:].tobytes())
    enc.stdin.close()
    assert enc.wait(60) == 0 and dec.wait(60) == 0
    reader.join(10)
    assert early >= 2 * 16000, "no audio came out before the input ended"
    assert len(got) == 2 * x.shape[1]
