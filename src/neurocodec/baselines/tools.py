"""Finding the system codecs the baselines wrap, and running them.

Every classic baseline is a thin wrapper around a Debian-packaged library (loaded with
:mod:`ctypes`) or program (run as a subprocess).  When one is missing the user gets a
:class:`~neurocodec.errors.MissingToolError` whose one-line message names the Debian package
to install, never a traceback.  This module also holds the PCM conversions shared by the
wrappers (float32 <-> 16-bit integers, as every one of these codecs takes 16-bit input).
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import MissingToolError, NeurocodecError, UserError

_LIB_DIRS = ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib", "/usr/local/lib", "/lib")


class ToolFailedError(NeurocodecError):
    """An installed codec program or library call failed on valid input (internal error)."""


def _lib_candidates(soname: str) -> list[str]:
    paths = [soname]
    for d in _LIB_DIRS:
        p = Path(d) / soname
        if p.exists():
            paths.insert(0, str(p))
    return paths


@lru_cache(maxsize=None)
def load_library(soname: str, package: str) -> ctypes.CDLL:
    """Load the shared library ``soname`` (e.g. ``"libopus.so.0"``).

    Raises :class:`MissingToolError` naming the Debian ``package`` when it cannot be loaded.
    """
    for cand in _lib_candidates(soname):
        try:
            return ctypes.CDLL(cand)
        except OSError:
            continue
    raise MissingToolError(f"shared library {soname} is not installed (apt-get install {package})")


def find_program(name: str, package: str) -> str:
    """Absolute path of the program ``name`` on ``PATH``.

    Raises :class:`MissingToolError` naming the Debian ``package`` when it is missing.
    """
    path = shutil.which(name)
    if path is None:
        raise MissingToolError(f"program '{name}' is not installed (apt-get install {package})")
    return path


def run_program(args: list[str], stdin: bytes = b"", *, error: type[Exception] = ToolFailedError,
                what: str = "") -> bytes:
    """Run ``args`` feeding ``stdin`` and return its standard output.

    A non-zero exit status raises ``error`` with the program's last line of stderr.
    """
    proc = subprocess.run(args, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if proc.returncode != 0:
        lines = proc.stderr.decode(errors="replace").strip().splitlines()
        last = lines[-1] if lines else f"exit status {proc.returncode}"
        raise error(f"{what or Path(args[0]).name} failed: {last}")
    return proc.stdout


def float_to_int16(x: np.ndarray) -> np.ndarray:
    """Round float audio in [-1, 1) to 16-bit integers (x * 32768, clipped), C-contiguous."""
    q = np.clip(np.round(np.asarray(x, dtype=np.float64) * 32768.0), -32768, 32767)
    return np.ascontiguousarray(q.astype(np.int16))


def int16_to_float(q: np.ndarray) -> np.ndarray:
    """16-bit integers to float32 audio (q / 32768)."""
    return np.asarray(q, dtype=np.float32) / np.float32(32768.0)


class BaselineConfigError(UserError):
    """A baseline was given an invalid setting (unknown application, mode, frame size ...)."""
