"""Golden bitstreams: the same input always gives byte-identical .ncdc files, whatever the
number of torch threads.  A change of these md5s is a change of the encoder: make it deliberately
(``python scripts/update_golden.py classic``), and bump the codec's ``codec_version`` (or the
container's FORMAT_VERSION) when older decoders can no longer read the new streams.

History: the mdct md5s changed when the payload budget came to include the container's header
and end marker (``api.payload_budget``; the payload coder itself is unchanged, see
``test_deterministic_and_golden_md5`` in tests/codecs/test_mdct_codec.py)."""

import hashlib
from pathlib import Path

import pytest

import neurocodec
from neurocodec import audio

GOLDEN = {
    ("mdct", 16.0): "e8805aecf7fcbc519ecaf9738e35c2d1",
    ("mdct", 8.0): "35f3e0e2aafe2bbe0273f59be0fd1d1c",
    ("pcm", 256.0): "4f1830e7ed8aa6b7804010c9e20da603",
}


def _encode(codec_id: str, kbps: float, path) -> bytes:
    wav, sr = audio.read_audio(path)
    return neurocodec.load(codec_id).compress(wav, sr, bitrate=kbps)


@pytest.mark.parametrize("codec_id,kbps", sorted(GOLDEN))
def test_golden_md5_across_thread_counts(codec_id, kbps, speech_path, md5_per_thread_count):
    digests = md5_per_thread_count(lambda: _encode(codec_id, kbps, speech_path))
    assert digests[0] == digests[1]
    assert digests[0] == GOLDEN[(codec_id, kbps)]


def test_golden_stream_decodes_to_same_audio(speech_path):
    data = _encode("mdct", 16.0, speech_path)
    a, _ = neurocodec.api.decompress(data)
    b, _ = neurocodec.api.decompress(data)
    assert hashlib.md5(a.tobytes()).hexdigest() == hashlib.md5(b.tobytes()).hexdigest()


#: a version-1 mdct stream (the first 3 s of examples/speech.flac at 16 kbps) written by the encoder
#: before codec version 2 (silent chunks), and the md5 of the float32 audio that decoder made of it
V1_MDCT_STREAM = Path(__file__).resolve().parent / "data" / "mdct_v1_speech3s_16k.ncdc"
V1_MDCT_DECODED_MD5 = "d598657bb4cce52e7a08ebee0696f210"


def test_version_1_mdct_stream_still_decodes_to_the_same_audio():
    data = V1_MDCT_STREAM.read_bytes()
    info = neurocodec.api.info(data)
    assert info.codec == "mdct" and info.codec_version == 1
    y, sr = neurocodec.api.decompress(data)
    assert sr == 16000 and y.shape == (1, 48000)
    assert hashlib.md5(y.tobytes()).hexdigest() == V1_MDCT_DECODED_MD5
