"""The evaluation harness: every (codec, bitrate, file) through a real bitstream, then metrics.

For each item the harness compresses the file with ``neurocodec.load(codec)`` into a complete
``.ncdc`` stream (so the bitrate is measured from what is stored, header and framing
included), decodes it, compensates the delay and computes the requested metrics
(:func:`neurocodec.eval.metrics.compute_metrics`).  Encode and decode real-time factors are
measured with one torch thread.  Results are appended to ``results.jsonl`` as they finish, so
an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from .. import api
from .. import audio as audio_io
from ..codecs import registry
from ..errors import UserError

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".opus", ".aiff", ".aif")
DEFAULT_METRICS = ("pesq_wb", "stoi", "si_snr", "mel_distance")


@dataclass(frozen=True)
class EvalItem:
    """One reference file to code."""

    path: str
    key: str  # stable name within the data set (relative path)


@dataclass(frozen=True)
class Condition:
    """A codec at one operating point."""

    codec: str
    bitrate: float  # nominal kbps the codec was run at
    requested: float  # kbps asked for on the command line
    config_hash: str = ""  # the codec's config/weights hash: results of other versions are not reused

    @property
    def label(self) -> str:
        return f"{self.codec}@{self.bitrate:g}"


@dataclass
class ItemResult:
    codec: str
    bitrate: float
    requested: float
    item: str
    config_hash: str
    sample_rate: int
    duration_s: float
    file_bytes: int
    measured_kbps: float  # per channel, like ``bitrate`` (the file's rate over its channel count)
    encode_rtf: float  # seconds of audio coded per second of wall time (higher is faster)
    decode_rtf: float
    delay_samples: int
    metrics: dict[str, float] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    decoded_path: str | None = None

    def flat(self) -> dict:
        d = asdict(self)
        m = d.pop("metrics")
        f = d.pop("failures")
        d.update(m)
        d["failures"] = "; ".join(f"{k}: {v}" for k, v in f.items())
        return d


def find_items(data: str | os.PathLike, split: str = "test", limit: int | None = None,
               sources: Sequence[str] | None = None) -> list[EvalItem]:
    """Items of a corpus manifest's ``split`` (optionally only some ``sources``), all audio of a
    folder, or a single audio file."""
    data = Path(data)
    if not data.exists():
        raise UserError(f"data not found: {data}")
    items: list[EvalItem] = []
    if data.is_file() and data.suffix.lower() in AUDIO_EXTENSIONS:
        items.append(EvalItem(str(data), data.name))
    elif data.is_dir():
        for p in sorted(data.rglob("*")):
            if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file():
                items.append(EvalItem(str(p), str(p.relative_to(data))))
    else:
        from ..data.manifest import Manifest

        man = Manifest.load(data)
        for rec in man.filter(split=split or None, source=list(sources) if sources else None).records:
            items.append(EvalItem(str(man.abspath(rec)), rec.path))
    if not items:
        raise UserError(f"no audio found in {data}" + (f" (split '{split}')" if not data.is_dir() else ""))
    return items[:limit] if limit else items


def plan_conditions(codecs: Sequence[str], bitrates: Sequence[float]) -> list[Condition]:
    """Map each requested bitrate to the codec's nearest supported operating point.

    Codecs with a ladder (AMR-WB's nine modes, CMRL's four rates) use the nearest rung;
    codecs with a range clamp nothing: bitrates outside the range are skipped.  Duplicates
    (e.g. PCM's single rate) are kept once.
    """
    out: list[Condition] = []
    seen = set()
    for cid in codecs:
        model = registry.create(cid)
        spec = model.bitrates
        for r in bitrates:
            if spec.choices:
                b = min(spec.choices, key=lambda c: abs(c - r))
            elif (spec.minimum is None or r >= spec.minimum) and (spec.maximum is None or r <= spec.maximum):
                b = float(r)
            else:
                continue
            if (cid, b) not in seen:
                seen.add((cid, b))
                out.append(Condition(cid, b, float(r), f"{model.stream_config_hash(b):08x}"))
    if not out:
        raise UserError("none of the requested bitrates is supported by the requested codecs")
    return out


def _mono(x: np.ndarray) -> np.ndarray:
    return x.mean(axis=0) if x.shape[0] > 1 else x[0]


def evaluate_item(cond: Condition, item: EvalItem, metrics: Sequence[str], save_dir: str | None = None) -> ItemResult:
    """Code one file with one condition and measure it (runs with one torch thread)."""
    import torch

    torch.set_num_threads(1)
    from .metrics import compute_metrics

    ref, sr = audio_io.read_audio(item.path)
    codec = api.load(cond.codec)
    t0 = time.perf_counter()
    # a condition is an operating point of one channel; --bitrate is the total over the channels
    data = codec.compress(ref, sr, bitrate=cond.bitrate * ref.shape[0])
    t1 = time.perf_counter()
    dec, _ = api.decompress(data)
    t2 = time.perf_counter()
    dur = ref.shape[1] / sr
    report = compute_metrics(_mono(ref), _mono(dec), sr, names=list(metrics))
    saved = None
    if save_dir is not None:
        out = Path(save_dir) / f"{Path(item.key).with_suffix('').as_posix().replace('/', '__')}.{cond.codec}_{cond.bitrate:g}.wav"
        audio_io.write_audio(out, dec, sr)
        saved = str(out)
    return ItemResult(
        codec=cond.codec, bitrate=cond.bitrate, requested=cond.requested, item=item.key,
        config_hash=f"{codec.model.stream_config_hash(cond.bitrate):08x}", sample_rate=int(sr), duration_s=dur,
        file_bytes=len(data), measured_kbps=8 * len(data) / dur / 1000 / ref.shape[0],
        encode_rtf=dur / max(t1 - t0, 1e-9), decode_rtf=dur / max(t2 - t1, 1e-9),
        delay_samples=int(report.delay_samples), metrics={k: float(v) for k, v in report.values.items()},
        failures=dict(report.failures), decoded_path=saved,
    )


def _key(codec: str, bitrate: float, item: str, config_hash: str) -> str:
    return f"{codec}\t{bitrate:g}\t{item}\t{config_hash}"


def load_results(path: Path) -> list[ItemResult]:
    """Results recorded so far (a half-written last line from an interrupted run is ignored)."""
    out = []
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                out.append(ItemResult(**json.loads(line)))
            except (json.JSONDecodeError, TypeError):
                continue
    return out


def run_evaluation(conditions: Sequence[Condition], items: Sequence[EvalItem], out_dir: str | os.PathLike,
                   metrics: Sequence[str] = DEFAULT_METRICS, jobs: int = 1, audio_examples: int = 3,
                   progress: bool = True) -> list[ItemResult]:
    """Run (or resume) every condition on every item; returns all results."""
    from tqdm import tqdm

    from .metrics import METRICS

    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise UserError(f"unknown metric(s) {', '.join(unknown)} (known: {', '.join(sorted(METRICS))})")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    res_path = out_dir / "results.jsonl"
    done = {_key(r.codec, r.bitrate, r.item, r.config_hash): r for r in load_results(res_path)}
    example_keys = {it.key for it in items[:audio_examples]}
    todo = [(c, it) for c in conditions for it in items
            if _key(c.codec, c.bitrate, it.key, c.config_hash) not in done]
    audio_dir = str(out_dir / "audio")

    def save_dir_for(it: EvalItem) -> str | None:
        return audio_dir if it.key in example_keys else None

    bar = tqdm(total=len(todo), desc="eval", unit="item", disable=not progress or not todo)
    if res_path.exists() and res_path.stat().st_size and not res_path.read_bytes().endswith(b"\n"):
        with open(res_path, "a") as log:  # a line torn by an interrupted run: start a fresh one
            log.write("\n")
    with open(res_path, "a") as log:
        def record(r: ItemResult) -> None:
            log.write(json.dumps(asdict(r)) + "\n")
            log.flush()
            done[_key(r.codec, r.bitrate, r.item, r.config_hash)] = r
            bar.set_postfix_str(f"{r.codec}@{r.bitrate:g}")
            bar.update()

        if jobs <= 1:
            for c, it in todo:
                record(evaluate_item(c, it, metrics, save_dir_for(it)))
        else:
            with ProcessPoolExecutor(max_workers=jobs) as pool:
                futs = [pool.submit(evaluate_item, c, it, metrics, save_dir_for(it)) for c, it in todo]
                for f in as_completed(futs):
                    record(f.result())
    bar.close()
    wanted = {_key(c.codec, c.bitrate, it.key, c.config_hash) for c in conditions for it in items}
    return [r for k, r in done.items() if k in wanted]


def parse_list(text: str, what: str, conv=str) -> list:
    try:
        vals = [conv(v.strip()) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UserError(f"invalid {what} list: {text!r}") from None
    if not vals:
        raise UserError(f"empty {what} list")
    return vals

