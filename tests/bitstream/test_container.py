import hashlib
import io

import numpy as np
import pytest

from neurocodec.bitstream import StreamHeader, iter_chunks, pack, read_header, unpack, write_stream
from neurocodec.bitstream.container import CHUNK_OVERHEAD_BYTES, END_MARKER_BYTES
from neurocodec.errors import (
    CorruptStreamError,
    NotAStreamError,
    StreamError,
    TruncatedStreamError,
    UnsupportedVersionError,
)

HEADER = StreamHeader(
    codec_id="pcm", codec_version=1, config_hash=0xDEADBEEF, sample_rate=44100,
    codec_sample_rate=16000, channels=2, num_samples=12345, codec_num_samples=4479, bitrate_bps=16000,
)
CHUNKS = [b"hello", bytes(range(256)), b"\x00" * 3]


def test_round_trip_header_and_chunks():
    data = pack(HEADER, CHUNKS)
    s = unpack(data)
    assert s.header == HEADER
    assert s.chunks == CHUNKS
    assert s.num_bytes == len(data)
    assert len(data) == len(HEADER.to_bytes()) + sum(len(c) + CHUNK_OVERHEAD_BYTES for c in CHUNKS) + END_MARKER_BYTES


def test_streaming_reader_matches_writer():
    buf = io.BytesIO()
    n = write_stream(buf, HEADER, iter(CHUNKS))
    assert n == len(buf.getvalue())
    buf.seek(0)
    assert read_header(buf) == HEADER
    assert list(iter_chunks(buf)) == CHUNKS


def test_golden_bytes():
    # The format is frozen: any change here must bump FORMAT_VERSION.
    data = pack(HEADER, CHUNKS)
    assert data[:9] == b"NCDC\x01\x03pcm"
    assert data[9:11] == b"\x00\x01"  # codec version, big-endian
    assert data[11:15] == bytes.fromhex("deadbeef")
    assert data[15:19] == (44100).to_bytes(4, "big")
    assert hashlib.md5(data).hexdigest() == "de88b65d40e870b4ca5cbd54b98f02fa"


def test_empty_stream_has_no_chunks():
    assert unpack(pack(HEADER, [])).chunks == []


def test_every_single_bit_flip_is_detected():
    data = pack(HEADER, [b"abc", b"defgh"])
    for i in range(len(data) * 8):
        bad = bytearray(data)
        bad[i // 8] ^= 1 << (i % 8)
        with pytest.raises(StreamError):
            unpack(bytes(bad))


def test_every_truncation_is_detected():
    data = pack(HEADER, [b"abc", b"defgh"])
    for n in range(len(data)):
        with pytest.raises(StreamError):
            unpack(data[:n])


def test_error_kinds():
    data = pack(HEADER, CHUNKS)
    with pytest.raises(NotAStreamError):
        unpack(b"RIFF" + data[4:])
    with pytest.raises(NotAStreamError):
        unpack(b"")
    with pytest.raises(TruncatedStreamError):
        unpack(data[:-3])
    with pytest.raises(CorruptStreamError):
        unpack(data + b"\x00")
    bad = bytearray(data)
    bad[4] = 99  # format version
    with pytest.raises(UnsupportedVersionError):
        unpack(bytes(bad))


def test_dropped_and_swapped_chunks_are_detected():
    a = pack(HEADER, [b"one", b"two"])
    h = len(HEADER.to_bytes())
    c1 = a[h:h + 4 + 3 + 4]
    c2 = a[h + 11:h + 22]
    end = a[h + 22:]
    with pytest.raises(CorruptStreamError):
        unpack(a[:h] + c2 + c1 + end)
    with pytest.raises(CorruptStreamError):
        unpack(a[:h] + c2 + end)


def test_invalid_header_values_rejected_on_write():
    for bad in (dict(codec_id="Bad ID"), dict(channels=0), dict(sample_rate=0)):
        kw = {**HEADER.__dict__, **bad}
        with pytest.raises(ValueError):
            StreamHeader(**kw).to_bytes()


def test_duration():
    assert HEADER.duration == pytest.approx(12345 / 44100)
    assert np.isclose(unpack(pack(HEADER, CHUNKS)).measured_kbps,
                      8 * len(pack(HEADER, CHUNKS)) / HEADER.duration / 1000)
