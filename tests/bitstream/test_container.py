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


# -- version 2: length in the end marker, segment marks -----------------------------------------

from neurocodec.bitstream import FLAG_LENGTH_AT_END, FLAG_SEGMENTED, SegmentEnd, StreamReader, StreamWriter  # noqa: E402

V2 = StreamHeader(
    codec_id="pcm", codec_version=1, config_hash=0xDEADBEEF, sample_rate=44100, codec_sample_rate=16000,
    channels=2, num_samples=0, codec_num_samples=0, bitrate_bps=16000,
    flags=FLAG_LENGTH_AT_END | FLAG_SEGMENTED, format_version=2,
)


def _v2(records, header=V2, lengths=(12345, 4479)) -> bytes:
    buf = io.BytesIO()
    w = StreamWriter(buf, header)
    for r in records:
        w.segment_end(r.codec_samples) if isinstance(r, SegmentEnd) else w.chunk(r)
    w.finish(*lengths)
    assert w.num_bytes == len(buf.getvalue())
    return buf.getvalue()


RECORDS = [b"abc", b"de", SegmentEnd(4000), b"fgh", SegmentEnd(479)]


def test_v2_round_trip_and_golden_bytes():
    data = _v2(RECORDS)
    assert data[4] == 2
    reader = StreamReader(io.BytesIO(data))
    assert reader.header.num_samples == 0
    assert list(reader) == RECORDS
    assert reader.finished and reader.header.num_samples == 12345 and reader.header.codec_num_samples == 4479
    assert reader.num_bytes == len(data)
    s = unpack(data)
    assert s.chunks == [b"abc", b"de", b"fgh"] and s.segments == [(2, 4000), (1, 479)]
    h = len(V2.to_bytes())
    mark = data[h + 2 * 8 + 5:h + 2 * 8 + 5 + 16]
    assert mark[:12] == bytes.fromhex("ffffffff") + (4000).to_bytes(8, "big")
    end = data[-24:]
    assert end[:20] == bytes(4) + (12345).to_bytes(8, "big") + (4479).to_bytes(8, "big")
    assert hashlib.md5(data).hexdigest() == "18efe41acfdac400bd346307d086e17b"


def test_v2_every_bit_flip_and_truncation_is_detected():
    data = _v2([b"abc", SegmentEnd(4000), b"d", SegmentEnd(479)])
    for i in range(len(data) * 8):
        bad = bytearray(data)
        bad[i // 8] ^= 1 << (i % 8)
        with pytest.raises(StreamError):
            unpack(bytes(bad))
    for n in range(len(data)):
        with pytest.raises(StreamError):
            unpack(data[:n])


def test_v2_inconsistent_streams_are_rejected():
    with pytest.raises(CorruptStreamError):  # segments do not add up to the length
        unpack(_v2([b"abc", SegmentEnd(4000)]))
    with pytest.raises(CorruptStreamError):  # chunks after the last mark
        unpack(_v2([b"abc", SegmentEnd(4479), b"x"]))
    fixed = StreamHeader(**{**V2.__dict__, "flags": 0, "num_samples": 12345, "codec_num_samples": 4479})
    with pytest.raises(ValueError):  # a writer refuses lengths that differ from its header
        _v2([b"abc"], fixed, (12345, 4478))
    with pytest.raises(ValueError):  # marks need FLAG_SEGMENTED
        _v2([b"abc", SegmentEnd(4479)], fixed)
    for bad in (dict(flags=0x8000), dict(flags=FLAG_LENGTH_AT_END, num_samples=5)):
        with pytest.raises(ValueError):
            StreamHeader(**{**V2.__dict__, **bad}).to_bytes()


def test_v2_length_at_end_without_segments():
    h = StreamHeader(**{**V2.__dict__, "flags": FLAG_LENGTH_AT_END})
    data = _v2([b"abc", b"def"], h)
    s = unpack(data)
    assert s.chunks == [b"abc", b"def"] and s.segments == [] and s.header.duration == pytest.approx(12345 / 44100)
    from neurocodec.bitstream.container import _crc

    body = (4479).to_bytes(8, "big")
    mark = bytes.fromhex("ffffffff") + body + _crc(1, 0xFFFFFFFF, body).to_bytes(4, "big")
    end = bytes(4) + (12345).to_bytes(8, "big") + body
    end += _crc(2, 0, end[4:]).to_bytes(4, "big")
    chunk = len(h.to_bytes()) + 11
    with pytest.raises(CorruptStreamError, match="segment mark"):  # a mark in an unsegmented stream
        unpack(data[:chunk] + mark + end)
