"""Simulated raters: HTTP clients that take a whole test through the server's API.

Used by the load bench (``bench/bench_listen_load.py``), the tests, and
``scripts/listen_demo.py``, which makes the README's example figure.  A simulated rater is
blind like a person: it only sees letters and downloads the stimuli as WAV.  Its scorer turns
what it downloaded into scores; :func:`listener_scorer` scores each stimulus by its log-spectral
distance to the open reference (so the scores follow audible differences) plus a per-rater
bias and noise.  These are *simulated* ratings: they demonstrate the pipeline, not a codec's
perceived quality.
"""

from __future__ import annotations

import asyncio
import io
import time
from dataclasses import dataclass, field
from typing import Awaitable, Callable

import numpy as np

Scorer = Callable[[int, dict[str, bytes]], dict[str, float]]  # (trial, {letter|'ref': wav bytes}) -> {letter: score}


@dataclass
class RaterRun:
    """What one simulated rater sent and how long each request took."""

    token: str
    sent: dict[int, dict[str, float]] = field(default_factory=dict)  # trial -> letter -> score
    latencies: list[float] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    replay_statuses: list[int] = field(default_factory=list)


async def _call(client, run: RaterRun, method: str, url: str, **kw):
    t0 = time.perf_counter()
    r = await client.request(method, url, headers={"Authorization": f"Bearer {run.token}"}, **kw)
    run.latencies.append(time.perf_counter() - t0)
    run.statuses.append(r.status_code)
    return r


async def take_test(client, base: str, token: str, scorer: Scorer | None = None, fetch_audio: bool = True,
                    replay: bool = False, rng: np.random.Generator | None = None) -> RaterRun:
    """Join, finish training and submit every trial; with ``replay`` every submission is sent a
    second time (its answer, expected 409, goes to ``replay_statuses``)."""
    run = RaterRun(token)
    rng = rng or np.random.default_rng()
    state = (await _call(client, run, "GET", f"{base}/api/rater")).raise_for_status().json()
    (await _call(client, run, "POST", f"{base}/api/rater/training")).raise_for_status()
    for k in range(state["next_trial"], state["trials"]):
        trial = (await _call(client, run, "GET", f"{base}/api/rater/trials/{k}")).raise_for_status().json()
        letters = trial["letters"]
        audio: dict[str, bytes] = {}
        if fetch_audio:
            for key in ["ref", *letters]:
                audio[key] = (await _call(client, run, "GET", f"{base}/api/rater/trials/{k}/audio/{key}")
                              ).raise_for_status().content
        scores = scorer(k, audio) if scorer else {x: float(rng.integers(0, 101)) for x in letters}
        half = {x: scores[x] for x in letters[: len(letters) // 2]}
        (await _call(client, run, "PUT", f"{base}/api/rater/trials/{k}/draft",
                     json={"nonce": trial["nonce"], "ratings": half, "played": letters[: len(letters) // 2]})
         ).raise_for_status()
        body = {"nonce": trial["nonce"], "ratings": scores, "played": letters, "seconds": 1.0}
        r = await _call(client, run, "POST", f"{base}/api/rater/trials/{k}", json=body)
        r.raise_for_status()
        run.sent[k] = scores
        if replay:
            r2 = await _call(client, run, "POST", f"{base}/api/rater/trials/{k}", json=body)
            run.replay_statuses.append(r2.status_code)
    return run


async def take_tests(base: str, tokens: list[str], scorers: list[Scorer | None] | None = None,
                     fetch_audio: bool = True, replay: bool = False, seed: int = 0) -> list[RaterRun]:
    """All raters at once, one connection pool."""
    import httpx

    limits = httpx.Limits(max_connections=len(tokens) + 8, max_keepalive_connections=len(tokens) + 8)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        jobs: list[Awaitable[RaterRun]] = [
            take_test(client, base, t, (scorers[i] if scorers else None), fetch_audio, replay,
                      np.random.default_rng([seed, i]))
            for i, t in enumerate(tokens)]
        return list(await asyncio.gather(*jobs))


def _read(wav: bytes) -> tuple[np.ndarray, int]:
    import soundfile as sf

    x, sr = sf.read(io.BytesIO(wav), dtype="float32", always_2d=True)
    return x.mean(axis=1), sr


def log_spectral_distance(ref: np.ndarray, deg: np.ndarray, sr: int) -> float:
    """Mean over frames of the RMS difference in dB of the STFT magnitudes (32 ms Hann frames,
    floor 60 dB below the reference's loudest bin)."""
    from scipy import signal

    n = int(0.032 * sr)
    _, _, a = signal.stft(ref, sr, nperseg=n)
    _, _, b = signal.stft(deg, sr, nperseg=n)
    pa, pb = np.abs(a) ** 2, np.abs(b) ** 2
    floor = pa.max() * 1e-6 + 1e-20
    d = 10 * np.log10(np.maximum(pa, floor)) - 10 * np.log10(np.maximum(pb, floor))
    return float(np.mean(np.sqrt(np.mean(d ** 2, axis=0))))


def listener_scorer(rng: np.random.Generator, scale_db: float = 6.0, noise: float = 6.0,
                    careless: bool = False) -> Scorer:
    """A simulated listener: the hidden reference (a stimulus identical to the open reference)
    gets ``100 - |N(0, 2)|``; any other stimulus ``100 exp(-LSD / scale_db)`` plus a rater bias
    and per-score noise, clipped to 0-100 and rounded; a ``careless`` listener answers
    uniformly at random."""
    bias = rng.normal(0, 4)

    def score(trial: int, audio: dict[str, bytes]) -> dict[str, float]:
        ref, sr = _read(audio["ref"])
        out = {}
        for key, wav in audio.items():
            if key == "ref":
                continue
            if careless:
                out[key] = float(rng.integers(0, 101))
                continue
            x, _ = _read(wav)
            if np.array_equal(x, ref):  # the hidden reference: found, as trained listeners do
                out[key] = float(100 - np.round(abs(rng.normal(0, 2))))
                continue
            s = 100 * np.exp(-log_spectral_distance(ref, x, sr) / scale_db) + bias + rng.normal(0, noise)
            out[key] = float(np.clip(np.round(s), 0, 100))
        return out

    return score
