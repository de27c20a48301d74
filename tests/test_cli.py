import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from neurocodec.cli import main


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def wav44(tmp_path):
    t = np.arange(44100) / 44100
    x = np.stack([0.3 * np.sin(2 * np.pi * 220 * t), 0.2 * np.sin(2 * np.pi * 330 * t)], axis=1)
    p = tmp_path / "in.wav"
    sf.write(p, x, 44100, subtype="PCM_16")
    return p


def test_encode_decode_info(tmp_path, wav44, capsys):
    enc = tmp_path / "a.ncdc"
    code, _, err = run(capsys, "encode", wav44, enc, "--codec", "pcm")
    assert code == 0 and enc.exists() and "pcm" in err
    code, out, _ = run(capsys, "info", enc, "--json")
    info = json.loads(out)
    assert code == 0 and info["codec"] == "pcm" and info["channels"] == 2 and info["sample_rate"] == 44100
    dec = tmp_path / "b.wav"
    code, _, _ = run(capsys, "decode", enc, dec)
    y, sr = sf.read(dec)
    assert code == 0 and sr == 44100 and y.shape == (44100, 2)
    code, _, _ = run(capsys, "decode", enc, tmp_path / "c.wav", "--sample-rate", "16000")
    assert sf.info(tmp_path / "c.wav").samplerate == 16000
    code, out, _ = run(capsys, "info", enc)
    assert code == 0 and "kbps measured" in out


def test_codecs_lists_registered(capsys):
    code, out, _ = run(capsys, "codecs", "--json")
    ids = {r["codec"] for r in json.loads(out)}
    assert code == 0 and {"pcm", "mdct"} <= ids


def _assert_user_error(code, err, out_path=None):
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("neurocodec: error: "), err
    assert "Traceback" not in err
    if out_path is not None:
        assert not Path(out_path).exists()
        assert not list(Path(out_path).parent.glob(f".{Path(out_path).name}*"))


def test_bad_audio_inputs(tmp_path, capsys):
    out = tmp_path / "o.ncdc"
    notaudio = tmp_path / "x.wav"
    notaudio.write_text("this is not audio")
    _assert_user_error(*run(capsys, "encode", notaudio, out)[::2], out)
    _assert_user_error(*run(capsys, "encode", tmp_path / "missing.wav", out)[::2], out)
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros((0, 1)), 16000)
    _assert_user_error(*run(capsys, "encode", empty, out)[::2], out)
    nan = tmp_path / "nan.wav"
    sf.write(nan, np.array([[0.0], [np.nan], [0.5]] * 100), 16000, subtype="FLOAT")
    _assert_user_error(*run(capsys, "encode", nan, out)[::2], out)


def test_bad_options(tmp_path, wav44, capsys):
    out = tmp_path / "o.ncdc"
    _assert_user_error(*run(capsys, "encode", wav44, out, "--codec", "nope")[::2], out)
    _assert_user_error(*run(capsys, "encode", wav44, out, "--codec", "pcm", "--bitrate", "3")[::2], out)
    _assert_user_error(*run(capsys, "encode", wav44, out, "--bitrate", "abc")[::2], out)
    _assert_user_error(*run(capsys, "frobnicate")[::2])


def test_bad_streams(tmp_path, wav44, capsys):
    enc = tmp_path / "a.ncdc"
    assert run(capsys, "encode", wav44, enc, "--codec", "pcm")[0] == 0
    data = enc.read_bytes()
    out = tmp_path / "o.wav"
    cases = {
        "notstream.ncdc": b"RIFF....WAVEfmt ",
        "trunc.ncdc": data[: len(data) // 2],
        "flip.ncdc": data[:100] + bytes([data[100] ^ 4]) + data[101:],
        "version.ncdc": data[:4] + b"\x07" + data[5:],
    }
    for name, blob in cases.items():
        p = tmp_path / name
        p.write_bytes(blob)
        _assert_user_error(*run(capsys, "decode", p, out)[::2], out)
        _assert_user_error(*run(capsys, "info", p)[::2])
    _assert_user_error(*run(capsys, "decode", tmp_path / "missing.ncdc", out)[::2], out)


def test_module_entry_point_exit_status(tmp_path):
    p = tmp_path / "x.ncdc"
    p.write_bytes(b"garbage")
    r = subprocess.run([sys.executable, "-m", "neurocodec", "info", str(p)], capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.startswith("neurocodec: error: not a neurocodec stream")


@pytest.mark.tools
@pytest.mark.parametrize("fmt", ["ogg", "mp3"])
def test_compressed_inputs_are_read(tmp_path, capsys, fmt):
    import shutil

    if fmt == "mp3" and shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg not installed")
    t = np.arange(22050) / 22050
    src = tmp_path / "src.wav"
    sf.write(src, 0.3 * np.sin(2 * np.pi * 440 * t), 22050)
    inp = tmp_path / f"in.{fmt}"
    if fmt == "ogg":
        sf.write(inp, 0.3 * np.sin(2 * np.pi * 440 * t), 22050, format="OGG", subtype="VORBIS")
    else:
        subprocess.run(["ffmpeg", "-v", "error", "-i", str(src), "-b:a", "64k", str(inp)], check=True)
    enc = tmp_path / "a.ncdc"
    code, _, err = run(capsys, "encode", inp, enc)
    assert code == 0, err
    code, out, _ = run(capsys, "info", enc, "--json")
    info = json.loads(out)
    assert info["sample_rate"] == 22050 and info["channels"] == 1
    assert abs(info["duration_s"] - 1.0) < 0.06  # mp3 decoders may add padding
