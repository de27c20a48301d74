"""Tool lookup, MissingToolError messages, PCM conversion and available()."""

from __future__ import annotations

import numpy as np
import pytest

from neurocodec import baselines
from neurocodec.baselines import tools
from neurocodec.errors import MissingToolError, UserError


def test_missing_library_names_the_debian_package():
    with pytest.raises(MissingToolError, match=r"libnothere\.so\.9 .*\(apt-get install libnothere9\)"):
        tools.load_library("libnothere.so.9", "libnothere9")
    assert issubclass(MissingToolError, UserError)


def test_missing_program_names_the_debian_package():
    with pytest.raises(MissingToolError, match=r"'no-such-tool' .*\(apt-get install some-package\)"):
        tools.find_program("no-such-tool", "some-package")


def test_run_program_reports_failure():
    assert tools.run_program(["cat"], b"abc") == b"abc"
    with pytest.raises(tools.ToolFailedError, match="sh failed: boom"):
        tools.run_program(["sh", "-c", "echo boom >&2; exit 3"])


def test_int16_conversion_rounds_and_clips():
    q = tools.float_to_int16(np.array([0.0, 0.5, -1.0, 1.0, 2.0, -3.0, 1 / 65536], np.float32))
    assert q.dtype == np.int16
    assert q.tolist() == [0, 16384, -32768, 32767, 32767, -32768, 0]
    assert tools.int16_to_float(np.array([16384, -32768], np.int16)).tolist() == [0.5, -1.0]


def test_available_lists_every_baseline():
    status = baselines.available()
    assert set(status) == {"opus", "amrwb", "codec2", "speex", "mp3", "lc3", "aac"}
    assert all(v is True or isinstance(v, str) for v in status.values())


def test_missing_ffmpeg_is_reported_not_raised(monkeypatch):
    monkeypatch.setattr(tools.shutil, "which", lambda name: None)
    status = baselines.available()
    assert "apt-get install ffmpeg" in status["mp3"] and "apt-get install ffmpeg" in status["aac"]
    with pytest.raises(MissingToolError, match="apt-get install ffmpeg"):
        baselines.create("aac")


def test_missing_library_is_reported(monkeypatch):
    real = tools.load_library.__wrapped__

    def fake(soname, package):
        if soname.startswith("libvo-amrwbenc"):
            raise MissingToolError(f"shared library {soname} is not installed (apt-get install {package})")
        return real(soname, package)

    monkeypatch.setattr("neurocodec.baselines.amrwb.load_library", fake)
    assert baselines.available()["amrwb"].endswith("(apt-get install libvo-amrwbenc0)")
