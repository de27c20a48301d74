"""Outputs never destroy anything: '-', FIFOs, symlinks, the input itself, bad paths, modes."""

import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from neurocodec import fileio
from neurocodec.cli import main

CLI = [sys.executable, "-m", "neurocodec"]


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def wav(tmp_path):
    t = np.arange(16000) / 16000
    p = tmp_path / "in.wav"
    sf.write(p, 0.3 * np.sin(2 * np.pi * 220 * t), 16000, subtype="PCM_16")
    return p


def _one_error_line(err: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("neurocodec: error:"), err


def _listing(d: Path) -> set[str]:
    return {p.name for p in d.iterdir()}


def test_dash_is_stdout_and_stdin(tmp_path, wav):
    enc = subprocess.run(CLI + ["encode", str(wav), "-", "--codec", "pcm", "-q"], cwd=tmp_path,
                         capture_output=True, check=True)
    assert not (tmp_path / "-").exists()
    assert enc.stdout[:4] == b"NCDC"
    info = subprocess.run(CLI + ["info", "-", "--json"], input=enc.stdout, capture_output=True, check=True)
    assert b'"codec": "pcm"' in info.stdout
    dec = subprocess.run(CLI + ["decode", "-", "-", "-q"], input=enc.stdout, cwd=tmp_path, capture_output=True,
                         check=True)
    assert dec.stdout[:4] == b"RIFF" and not (tmp_path / "-").exists()
    enc2 = subprocess.run(CLI + ["encode", "-", "-", "--codec", "pcm", "-q"], input=wav.read_bytes(),
                          capture_output=True, check=True)
    assert info.returncode == 0 and enc2.stdout[:4] == b"NCDC"


def test_output_equal_to_input_is_refused(tmp_path, wav, capsys):
    before = wav.read_bytes()
    code, _, err = run(capsys, "encode", wav, wav, "--codec", "pcm")
    assert code == 2 and "is the input" in err
    _one_error_line(err)
    link = tmp_path / "link.wav"
    link.symlink_to(wav)
    code, _, err = run(capsys, "encode", wav, link, "--codec", "pcm")
    assert code == 2 and "is the input" in err
    assert wav.read_bytes() == before and link.is_symlink()
    enc = tmp_path / "a.ncdc"
    assert run(capsys, "encode", wav, enc, "--codec", "pcm")[0] == 0
    stream = enc.read_bytes()
    code, _, err = run(capsys, "decode", enc, enc)
    assert code == 2 and enc.read_bytes() == stream


@pytest.mark.parametrize("name", ["missing/out.ncdc", "sub", "sub/", "newdir/"])
def test_bad_output_paths(tmp_path, wav, capsys, name):
    (tmp_path / "sub").mkdir()
    before = _listing(tmp_path)
    code, _, err = run(capsys, "encode", wav, tmp_path / name if not name.endswith("/") else f"{tmp_path}/{name}",
                       "--codec", "pcm")
    assert code == 2
    _one_error_line(err)
    assert _listing(tmp_path) == before and _listing(tmp_path / "sub") == set()


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_unwritable_directory(tmp_path, wav, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        code, _, err = run(capsys, "encode", wav, ro / "a.ncdc", "--codec", "pcm")
    finally:
        ro.chmod(0o700)
    assert code == 2 and "permission denied" in err


def test_unwritable_path_reported(tmp_path, wav, capsys, monkeypatch):
    # as root the permission bits do not bind, so the check is exercised through os.access
    monkeypatch.setattr(fileio.os, "access", lambda *a, **k: False)
    code, _, err = run(capsys, "encode", wav, tmp_path / "a.ncdc", "--codec", "pcm")
    assert code == 2 and "permission denied" in err
    _one_error_line(err)
    assert not (tmp_path / "a.ncdc").exists()


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_new_files_get_the_umask_mode(tmp_path, wav, capsys, umask):
    old = os.umask(umask)
    try:
        assert run(capsys, "encode", wav, tmp_path / "a.ncdc", "--codec", "pcm")[0] == 0
        assert run(capsys, "decode", tmp_path / "a.ncdc", tmp_path / "b.wav")[0] == 0
    finally:
        os.umask(old)
    for name in ("a.ncdc", "b.wav"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666 & ~umask


def test_existing_file_keeps_its_mode_and_is_replaced_whole(tmp_path, wav, capsys):
    out = tmp_path / "a.ncdc"
    out.write_bytes(b"old")
    out.chmod(0o640)
    assert run(capsys, "encode", wav, out, "--codec", "pcm")[0] == 0
    assert out.read_bytes()[:4] == b"NCDC" and stat.S_IMODE(out.stat().st_mode) == 0o640


def test_symlink_output_keeps_the_link(tmp_path, wav, capsys):
    target = tmp_path / "target.ncdc"
    target.write_bytes(b"old")
    link = tmp_path / "link.ncdc"
    link.symlink_to(target)
    assert run(capsys, "encode", wav, link, "--codec", "pcm")[0] == 0
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_bytes()[:4] == b"NCDC"
    assert _listing(tmp_path) == {"in.wav", "target.ncdc", "link.ncdc"}


def test_fifo_output_is_written_through(tmp_path, wav, capsys):
    fifo = tmp_path / "out.wav"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    code, _, _ = run(capsys, "encode", wav, fifo, "--codec", "pcm")
    reader.join(timeout=30)
    assert code == 0 and stat.S_ISFIFO(fifo.stat().st_mode)
    ref = tmp_path / "ref.ncdc"
    assert run(capsys, "encode", wav, ref, "--codec", "pcm")[0] == 0
    assert got == [ref.read_bytes()]
    # decoded audio through a FIFO: a streamed WAV that soundfile reads back
    got.clear()
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    assert run(capsys, "decode", ref, fifo)[0] == 0
    reader.join(timeout=30)
    (tmp_path / "piped.wav").write_bytes(got[0])
    y, sr = sf.read(tmp_path / "piped.wav", dtype="int16")
    x, _ = sf.read(wav, dtype="int16")
    assert sr == 16000 and np.array_equal(y, x)


def test_failed_decode_leaves_nothing_behind(tmp_path, wav, capsys):
    enc = tmp_path / "a.ncdc"
    assert run(capsys, "encode", wav, enc, "--codec", "pcm")[0] == 0
    bad = tmp_path / "bad.ncdc"
    bad.write_bytes(enc.read_bytes()[:-5])
    before = _listing(tmp_path)
    code, _, err = run(capsys, "decode", bad, tmp_path / "out.wav")
    assert code == 2 and "truncated" in err
    assert _listing(tmp_path) == before


def test_missing_input_and_flac_to_pipe(tmp_path, capsys):
    code, _, err = run(capsys, "encode", tmp_path / "nope.wav", tmp_path / "a.ncdc")
    assert code == 2 and "not found" in err
    code, _, err = run(capsys, "info", tmp_path / "nope.ncdc")
    assert code == 2 and "not found" in err


def test_progress_bar_only_on_a_terminal(monkeypatch):
    import io

    class Tty(io.StringIO):
        def isatty(self):
            return True

    for quiet, tty, shown in ((False, True, True), (True, True, False), (False, False, False)):
        err = Tty() if tty else io.StringIO()
        monkeypatch.setattr(sys, "stderr", err)
        bar = fileio.Progress(10.0, "encode", quiet=quiet, delay=0)
        bar.update(5.0)
        bar.close()
        assert ("encode" in err.getvalue()) == shown


def test_raw_input_cut_inside_a_frame_is_an_error(tmp_path, capsys):
    raw = tmp_path / "a.raw"
    raw.write_bytes(b"\x00\x01" * 100 + b"\x02")
    code, _, err = run(capsys, "encode", raw, tmp_path / "a.ncdc", "--raw-format", "s16le")
    assert code == 2 and "inside a sample frame" in err and not (tmp_path / "a.ncdc").exists()


def test_json_summary_cannot_share_stdout_with_the_stream(tmp_path, wav, capsys):
    code, out, err = run(capsys, "encode", wav, "-", "--json")
    assert code == 2 and out == "" and "--json" in err


def test_threads_option_sets_torch_threads(tmp_path, wav, capsys):
    import torch

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert run(capsys, "encode", wav, tmp_path / "a.ncdc", "--codec", "pcm", "--threads", "1", "-q")[0] == 0
        assert torch.get_num_threads() == 1
        torch.set_num_threads(2)
        assert run(capsys, "decode", tmp_path / "a.ncdc", tmp_path / "a.wav", "--threads", "0", "-q")[0] == 0
        assert torch.get_num_threads() == 2  # 0 leaves torch's setting alone
    finally:
        torch.set_num_threads(before)


def test_sigterm_leaves_no_temporary_file(tmp_path):
    import signal
    import time

    out = tmp_path / "a.ncdc"
    proc = subprocess.Popen(CLI + ["encode", "-", str(out), "--raw-format", "s16le", "-q"], stdin=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdin.write(bytes(64000))  # 2 s of audio, input left open
    proc.stdin.flush()
    deadline = time.monotonic() + 60
    while not any(p.name.endswith(".part") for p in tmp_path.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert any(p.name.endswith(".part") for p in tmp_path.iterdir()), "the encoder never opened its output"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 128 + signal.SIGTERM
    proc.stdin.close()
    proc.stderr.close()
    assert list(tmp_path.iterdir()) == []
