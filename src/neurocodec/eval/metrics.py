"""Registry of objective quality metrics and :func:`compute_metrics` (eval layer).

``METRICS`` maps a stable metric name to a :class:`MetricSpec`; every metric is a function
``(ref, deg, sr) -> float`` on aligned, equal-length mono float signals.
:func:`compute_metrics` estimates and removes the decoder delay first
(:func:`neurocodec.eval.align.align`), then computes each requested metric; a metric that
fails or is undefined on this input becomes NaN with its reason in ``failures`` instead of
aborting the others.

PEAQ and the 2f-model are implemented in :mod:`neurocodec.eval.peaq` and adapted in
:mod:`neurocodec.eval.metrics_peaq`.
"""

from __future__ import annotations

import importlib.util
import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from ..errors import UserError
from .metrics_ext import MissingPackageError
from .metrics_ext import (dnsmos, dnsmos_bak, dnsmos_ovrl, dnsmos_p808, dnsmos_sig, estoi, pesq_wb, stoi,
                          visqol_audio, visqol_speech)
from .metrics_peaq import peaq_odg, twof
from .align import align
from .snr import segmental_snr, si_snr, snr
from .spectral import effective_bandwidth, log_spectral_distance, mel_distance

MetricFn = Callable[[np.ndarray, np.ndarray, int], float]

__all__ = [
    "METRICS", "MetricFn", "MetricReport", "MetricSpec", "MissingPackageError", "UnknownMetricError",
    "compute_metrics",
    "get_metric", "metric_names",
    # the metric functions, re-exported: (ref, deg, sr) -> float on aligned mono signals
    "snr", "segmental_snr", "si_snr", "mel_distance", "log_spectral_distance", "effective_bandwidth",
    "peaq_odg", "twof", "pesq_wb", "stoi", "estoi", "visqol_speech", "visqol_audio",
    "dnsmos", "dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl", "dnsmos_p808",
]


class UnknownMetricError(UserError):
    """No metric is registered under the requested name."""


@dataclass(frozen=True)
class MetricSpec:
    """A metric: its function and how to read its value.

    ``speech``: designed for speech only (PESQ, STOI, DNSMOS, ViSQOL speech mode);
    ``slow``: takes about a second or more on an 8 s clip (see ``bench/bench_metrics.py``);
    ``intrusive``: compares with the reference (DNSMOS does not);
    ``requires``: ``(import name, pip package)`` pairs beyond the core dependencies.
    """

    name: str
    function: MetricFn
    higher_is_better: bool
    unit: str
    speech: bool = False
    slow: bool = False
    intrusive: bool = True
    requires: tuple[tuple[str, str], ...] = ()
    description: str = ""

    def missing_packages(self) -> list[str]:
        """pip names of the required packages that cannot be imported here."""
        return [pip for module, pip in self.requires if importlib.util.find_spec(module) is None]

    def available(self) -> bool:
        return not self.missing_packages()


_PESQ = (("pesq", "pesq"),)
_STOI = (("pystoi", "pystoi"),)
_VISQOL_SPEECH = (("visqol", "visqol-python"), ("ai_edge_litert", "ai-edge-litert"))
_VISQOL_AUDIO = (("visqol", "visqol-python"),)
_DNSMOS = (("speechmos", "speechmos"), ("onnxruntime", "onnxruntime"), ("librosa", "librosa"))

METRICS: dict[str, MetricSpec] = {
    spec.name: spec
    for spec in (
        MetricSpec("snr", snr, True, "dB", description="signal-to-noise ratio"),
        MetricSpec("segsnr", segmental_snr, True, "dB",
                   description="segmental SNR, 20 ms frames clamped to [-10, 35] dB, pauses skipped"),
        MetricSpec("si_snr", si_snr, True, "dB", description="scale-invariant SNR (Luo & Mesgarani 2019)"),
        MetricSpec("mel_distance", mel_distance, False, "log10",
                   description="multi-scale log-mel L1 distance (EnCodec eq. 1 scales)"),
        MetricSpec("lsd", log_spectral_distance, False, "log10",
                   description="log-spectral distance (Kuleshov et al. 2017)"),
        MetricSpec("bandwidth", effective_bandwidth, True, "Hz",
                   description="effective bandwidth: top of the band where the decoded spectrum "
                               "is within 10 dB of the reference's"),
        MetricSpec("peaq_odg", peaq_odg, True, "ODG",
                   description="PEAQ basic version objective difference grade (ITU-R BS.1387-1)"),
        MetricSpec("twof", twof, True, "MUSHRA",
                   description="2f-model (Kastner & Herre 2019), from the PEAQ MOVs"),
        MetricSpec("pesq_wb", pesq_wb, True, "MOS", speech=True, requires=_PESQ,
                   description="wide-band PESQ, ITU-T P.862.2, at 16 kHz"),
        MetricSpec("stoi", stoi, True, "", speech=True, requires=_STOI,
                   description="short-time objective intelligibility (Taal et al. 2011)"),
        MetricSpec("estoi", estoi, True, "", speech=True, requires=_STOI,
                   description="extended STOI (Jensen & Taal 2016)"),
        MetricSpec("visqol_speech", visqol_speech, True, "MOS", speech=True, slow=True,
                   requires=_VISQOL_SPEECH, description="ViSQOL v3 speech mode at 16 kHz"),
        MetricSpec("visqol_audio", visqol_audio, True, "MOS", slow=True, requires=_VISQOL_AUDIO,
                   description="ViSQOL v3 audio mode at 48 kHz"),
        MetricSpec("dnsmos_sig", dnsmos_sig, True, "MOS", speech=True, slow=True, intrusive=False,
                   requires=_DNSMOS, description="DNSMOS P.835 speech quality (non-intrusive)"),
        MetricSpec("dnsmos_bak", dnsmos_bak, True, "MOS", speech=True, slow=True, intrusive=False,
                   requires=_DNSMOS, description="DNSMOS P.835 background quality (non-intrusive)"),
        MetricSpec("dnsmos_ovrl", dnsmos_ovrl, True, "MOS", speech=True, slow=True, intrusive=False,
                   requires=_DNSMOS, description="DNSMOS P.835 overall quality (non-intrusive)"),
        MetricSpec("dnsmos_p808", dnsmos_p808, True, "MOS", speech=True, slow=True, intrusive=False,
                   requires=_DNSMOS, description="DNSMOS P.808 MOS (non-intrusive)"),
    )
}


@dataclass
class MetricReport:
    """Metrics of one (reference, decoded) pair.

    ``delay_samples``: decoder delay removed before measuring (positive: decoded was late);
    ``values``: every requested metric (NaN when it failed); ``failures``: the reason for each
    NaN; ``seconds``: wall time per metric.
    """

    delay_samples: int
    values: dict[str, float]
    failures: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def metric_names(*, speech: bool | None = None, slow: bool | None = None,
                 intrusive: bool | None = None) -> list[str]:
    """Registered metric names, optionally filtered by the :class:`MetricSpec` flags."""
    out = []
    for name, spec in METRICS.items():
        if speech is not None and spec.speech != speech:
            continue
        if slow is not None and spec.slow != slow:
            continue
        if intrusive is not None and spec.intrusive != intrusive:
            continue
        out.append(name)
    return out


def get_metric(name: str) -> MetricSpec:
    """The spec registered under ``name``; :class:`UnknownMetricError` lists the known names."""
    try:
        return METRICS[name]
    except KeyError:
        raise UnknownMetricError(f"unknown metric '{name}' (known: {', '.join(METRICS)})") from None


def _run_metric(spec: MetricSpec, ref: np.ndarray, deg: np.ndarray, sr: int) -> tuple[float, str | None]:
    """Value of one metric and, when it is NaN, why.

    The pair was validated by :func:`align`, so an exception here is specific to this metric
    (input too short or silent for it, a model failing): it is recorded, not raised.  Only a
    missing package propagates.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            value = float(spec.function(ref, deg, sr))
        except MissingPackageError:
            raise
        except Exception as exc:  # a metric-specific failure must not abort the others
            return math.nan, f"{type(exc).__name__}: {exc}"
    if math.isnan(value):
        msgs = [str(w.message) for w in caught]
        return value, "; ".join(msgs) if msgs else "metric returned NaN"
    return value, None


def compute_metrics(ref, deg, sr: int, names: Sequence[str] | None = None, *,
                    max_delay_s: float = 0.5) -> MetricReport:
    """Align ``deg`` to ``ref`` (mono float arrays at ``sr``) and compute the named metrics.

    ``names=None`` means every registered metric whose packages are installed (the others
    are reported as failures).  Unknown names raise :class:`UnknownMetricError`; a requested
    metric whose optional package is missing raises
    :class:`MissingPackageError` naming the pip package.  Bad
    audio (empty, non-finite, multi-channel) raises :class:`~neurocodec.errors.AudioError`.
    """
    failures: dict[str, str] = {}
    if names is None:
        specs = []
        for spec in METRICS.values():
            missing = spec.missing_packages()
            if missing:
                failures[spec.name] = f"not installed: pip install {' '.join(missing)}"
            else:
                specs.append(spec)
    else:
        if isinstance(names, str):
            names = [names]
        specs = [get_metric(n) for n in dict.fromkeys(names)]
        for spec in specs:
            missing = spec.missing_packages()
            if missing:
                raise MissingPackageError(f"metric '{spec.name}' needs the Python package(s) "
                                              f"{', '.join(missing)} (pip install {' '.join(missing)})")
    aligned = align(ref, deg, sr, max_delay_s)
    values = {name: math.nan for name in failures}
    seconds: dict[str, float] = {}
    for spec in specs:
        t0 = time.perf_counter()
        value, reason = _run_metric(spec, aligned.ref, aligned.deg, int(sr))
        seconds[spec.name] = time.perf_counter() - t0
        values[spec.name] = value
        if reason is not None:
            failures[spec.name] = reason
    order = list(METRICS) if names is None else [spec.name for spec in specs]
    values = {name: values[name] for name in order}
    return MetricReport(delay_samples=aligned.delay_samples, values=values, failures=failures, seconds=seconds)
