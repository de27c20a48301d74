"""Wrappers of external quality metrics: PESQ, STOI/ESTOI, ViSQOL, DNSMOS (eval layer).

Each metric is a function ``(ref, deg, sr) -> float`` on an aligned, equal-length mono pair;
signals are resampled with soxr to the rate the metric is defined at.  A missing optional
package raises :class:`MissingPackageError` naming what to ``pip install``; an input on which
the metric is undefined (no speech found, too short) gives NaN with a
:class:`~neurocodec.eval.signals.MetricWarning`.

* PESQ-WB: ITU-T P.862.2 (wide-band PESQ, MOS-LQO 1.04-4.64), package ``pesq``, at 16 kHz.
* STOI (Taal et al. 2011) and ESTOI (Jensen & Taal 2016), package ``pystoi``, which resamples
  to 10 kHz itself.
* ViSQOL v3 (Chinen et al. 2020), package ``visqol-python`` (a Python port of Google's C++
  ViSQOL): speech mode at 16 kHz with the deep-lattice mapper (the C++ default, needs
  ``ai-edge-litert``), audio mode at 48 kHz with the bundled SVR model.  MOS-LQO 1-5.
* DNSMOS P.835 (Reddy et al. 2022), package ``speechmos`` (ONNX models bundled; needs
  ``onnxruntime`` and ``librosa``), non-intrusive: only the decoded signal, at 16 kHz.
"""

from __future__ import annotations

import hashlib
import importlib
import math
import os
import threading
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import UserError
from .signals import as_mono, as_pair, resample_mono, undefined

PESQ_RATE = 16000
VISQOL_SPEECH_RATE = 16000
VISQOL_AUDIO_RATE = 48000
DNSMOS_RATE = 16000
#: pystoi works at 10 kHz on 256-sample frames hopped by 128 and needs 30 of them
STOI_RATE = 10000
STOI_MIN_SAMPLES = 256 + 29 * 128

#: import name -> pip package, for the error message when one is missing
PIP_NAMES = {
    "pesq": "pesq",
    "pystoi": "pystoi",
    "visqol": "visqol-python",
    "ai_edge_litert": "ai-edge-litert",
    "speechmos": "speechmos",
    "onnxruntime": "onnxruntime",
    "librosa": "librosa",
}


class MissingPackageError(UserError):
    """An optional Python package needed by a metric is not installed."""


def require(module: str, metric: str) -> Any:
    """Import ``module`` or raise :class:`MissingPackageError` naming the pip package to install."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        missing = (exc.name or module).split(".")[0]
        pip = PIP_NAMES.get(missing, missing)
        raise MissingPackageError(f"metric '{metric}' needs the Python package '{pip}' "
                                  f"(pip install {pip})") from None


# -- PESQ ------------------------------------------------------------------------------------
def pesq_wb(ref, deg, sr: int) -> float:
    """Wide-band PESQ (ITU-T P.862.2) MOS-LQO at 16 kHz; NaN with a warning when no speech is found."""
    ref, deg = as_pair(ref, deg)
    pesq = require("pesq", "pesq_wb")
    ref = resample_mono(ref, sr, PESQ_RATE)
    deg = resample_mono(deg, sr, PESQ_RATE)
    if not np.any(ref) or not np.any(deg):  # the P.862 C code fails on an all-zero input
        return undefined("PESQ is undefined for a silent reference or decoded signal")
    try:
        return float(pesq.pesq(PESQ_RATE, ref, deg, "wb"))
    except pesq.NoUtterancesError:
        return undefined("PESQ found no utterances (speech) in the signal")
    except pesq.BufferTooShortError:
        return undefined(f"signal too short for PESQ ({ref.size / PESQ_RATE:.2f} s)")


# -- STOI / ESTOI ----------------------------------------------------------------------------
def _stoi(ref, deg, sr: int, extended: bool, name: str) -> float:
    ref, deg = as_pair(ref, deg)
    pystoi = require("pystoi", name)
    if not np.any(ref):
        return undefined(f"{name.upper()} is undefined for a silent reference")
    if ref.size * STOI_RATE / sr < STOI_MIN_SAMPLES:
        return undefined(f"{name.upper()} needs at least 30 non-silent 25.6 ms frames "
                         f"(signal too short: {ref.size / sr:.2f} s)")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = float(pystoi.stoi(ref, deg, sr, extended=extended))
    short = [w for w in caught if "Not enough STFT frames" in str(w.message)]
    if short:
        return undefined(f"{name.upper()} needs at least 30 non-silent 25.6 ms frames after silence removal")
    for w in caught:  # pass other warnings on
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return value


def stoi(ref, deg, sr: int) -> float:
    """Short-time objective intelligibility (Taal et al., IEEE TASLP 2011), 0-1."""
    return _stoi(ref, deg, sr, False, "stoi")


def estoi(ref, deg, sr: int) -> float:
    """Extended STOI (Jensen & Taal, IEEE/ACM TASLP 2016), about 0-1."""
    return _stoi(ref, deg, sr, True, "estoi")


# -- ViSQOL ----------------------------------------------------------------------------------
_visqol_apis: dict[str, Any] = {}
_visqol_lock = threading.Lock()


def _visqol_api(mode: str, metric: str) -> Any:
    with _visqol_lock:
        if mode not in _visqol_apis:
            visqol = require("visqol", metric)
            api = visqol.VisqolApi()
            if mode == "speech":
                require("ai_edge_litert", metric)  # lattice mapper, as C++ ViSQOL's default
                api.create(mode="speech", use_lattice_model=True)
            else:
                api.create(mode="audio")
            _visqol_apis[mode] = api
        return _visqol_apis[mode]


def _visqol(ref, deg, sr: int, mode: str, rate: int, metric: str) -> float:
    ref, deg = as_pair(ref, deg)
    api = _visqol_api(mode, metric)
    ref = resample_mono(ref, sr, rate)
    deg = resample_mono(deg, sr, rate)
    if not np.any(ref):
        return undefined("ViSQOL is undefined for a silent reference")
    return float(api.measure_from_arrays(ref, deg, rate).moslqo)


def visqol_speech(ref, deg, sr: int) -> float:
    """ViSQOL v3 speech mode MOS-LQO (Chinen et al., QoMEX 2020), at 16 kHz, lattice mapper."""
    return _visqol(ref, deg, sr, "speech", VISQOL_SPEECH_RATE, "visqol_speech")


def visqol_audio(ref, deg, sr: int) -> float:
    """ViSQOL v3 audio mode MOS-LQO (Chinen et al., QoMEX 2020), at 48 kHz, SVR mapper."""
    return _visqol(ref, deg, sr, "audio", VISQOL_AUDIO_RATE, "visqol_audio")


# -- DNSMOS ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class DnsmosScores:
    """DNSMOS P.835 scores (1-5): speech signal, background noise, overall; and the P.808 MOS."""

    sig: float
    bak: float
    ovrl: float
    p808: float


_dnsmos_cache: dict[str, DnsmosScores] = {}
_dnsmos_lock = threading.Lock()
_dnsmos_model: Any = None


def _dnsmos_scorer() -> Any:
    """speechmos's DNSMOS scorer with single-threaded ONNX sessions (the harness runs one
    process per core; onnxruntime's default thread pool only contends with them)."""
    global _dnsmos_model
    if _dnsmos_model is None:
        dns = require("speechmos.dnsmos", "dnsmos")
        ort = require("onnxruntime", "dnsmos")
        models = os.path.dirname(os.path.abspath(dns.__file__))

        class SingleThreadDnsmos(dns.DNSMOS):
            def __init__(self, primary_model_path: str, p808_model_path: str) -> None:
                opts = ort.SessionOptions()
                opts.intra_op_num_threads = 1
                opts.inter_op_num_threads = 1
                cpu = ["CPUExecutionProvider"]
                self.primary_model_path = primary_model_path
                self.onnx_sess = ort.InferenceSession(primary_model_path, opts, providers=cpu)
                self.p808_onnx_sess = ort.InferenceSession(p808_model_path, opts, providers=cpu)

        _dnsmos_model = SingleThreadDnsmos(os.path.join(models, "dnsmos_models", "sig_bak_ovr.onnx"),
                                           os.path.join(models, "dnsmos_models", "model_v8.onnx"))
    return _dnsmos_model


def dnsmos(deg, sr: int) -> DnsmosScores:
    """DNSMOS P.835 (Reddy, Gopal & Cutler, ICASSP 2022) of a decoded signal (non-intrusive).

    The signal is resampled to 16 kHz and clipped to [-1, 1] (as a 16-bit file would be);
    speechmos's ``DNSMOS`` scorer (its bundled ONNX models, run single-threaded here) rates
    9.01 s windows hopped by 1 s, repeating shorter signals, and averages them.  The last
    result is cached, so the four ``dnsmos_*`` metrics cost one run.
    """
    x = as_mono(deg, "decoded signal")
    key = hashlib.sha1(np.ascontiguousarray(x).tobytes() + str(sr).encode()).hexdigest()
    with _dnsmos_lock:
        if key in _dnsmos_cache:
            return _dnsmos_cache[key]
    x = np.clip(resample_mono(x, sr, DNSMOS_RATE), -1.0, 1.0).astype(np.float32)
    if not np.any(x):
        nan = math.nan
        undefined("DNSMOS is undefined for a silent signal")
        return DnsmosScores(nan, nan, nan, nan)
    with _dnsmos_lock:
        scorer = _dnsmos_scorer()
    out = scorer(x, DNSMOS_RATE, False)  # False: the non-personalized P.835 model
    scores = DnsmosScores(sig=float(out["sig_mos"]), bak=float(out["bak_mos"]),
                          ovrl=float(out["ovrl_mos"]), p808=float(out["p808_mos"]))
    with _dnsmos_lock:
        _dnsmos_cache.clear()
        _dnsmos_cache[key] = scores
    return scores


def dnsmos_sig(ref, deg, sr: int) -> float:
    """DNSMOS P.835 SIG (speech signal quality, 1-5) of ``deg``; ``ref`` is ignored."""
    as_pair(ref, deg)
    return dnsmos(deg, sr).sig


def dnsmos_bak(ref, deg, sr: int) -> float:
    """DNSMOS P.835 BAK (background noise quality, 1-5) of ``deg``; ``ref`` is ignored."""
    as_pair(ref, deg)
    return dnsmos(deg, sr).bak


def dnsmos_ovrl(ref, deg, sr: int) -> float:
    """DNSMOS P.835 OVRL (overall quality, 1-5) of ``deg``; ``ref`` is ignored."""
    as_pair(ref, deg)
    return dnsmos(deg, sr).ovrl


def dnsmos_p808(ref, deg, sr: int) -> float:
    """DNSMOS P.808 MOS (1-5) of ``deg``; ``ref`` is ignored."""
    as_pair(ref, deg)
    return dnsmos(deg, sr).p808
