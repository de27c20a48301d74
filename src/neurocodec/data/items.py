"""Work items of a corpus build: what each one makes, and how it is made and recorded.

A work item is one unit of resumable work - an Asterisk prompt, one synthesized utterance,
one 10-second chunk of a music-on-hold track, one rendered score, one mixture - and yields
one or more FLAC segments.  :func:`run_item` writes the segments atomically and then a
small JSON record of them under ``.items/`` (with a digest of the item's parameters); an
item whose record exists, matches its parameters and whose files all exist is skipped, and when some of its files are missing only those are rewritten
(the audio of an item depends only on the build seed and the item, so the others are
unchanged).  Items that fail for a reason of their own (a score music21 cannot parse, a
render over its time cap) are recorded as failed with the reason and skipped thereafter.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..audio import atomic_write_bytes, read_audio, resample, write_audio
from ..errors import AudioError, MissingToolError
from .manifest import SegmentRecord
from .mixing import colored_noise, fit_to, mix, normalize_rms
from .music import Piece, render_piece
from .sources import G722_BANDWIDTH_HZ, G722_RATE, decode_g722, prompt_transcripts
from .splits import item_rng
from .text import load_sentences, pick_utterance
from .tts import Prosody, TtsVoice, synthesize

MIN_SEGMENT_S = 0.25  # shorter pieces of audio are not written
MIN_MUSIC_TAIL_S = 1.0  # a rendered piece's last segment must be at least this long
TRIM_DB = -50.0  # trailing / leading silence threshold relative to the peak (TTS, rendered)


@dataclass(frozen=True)
class BuildContext:
    """What every item of one build shares."""

    out_dir: str
    sample_rate: int
    seed: int
    segment_seconds: float = 10.0
    piece_seconds: float = 30.0


@dataclass
class WorkItem:
    """One unit of work: ``item_id`` is unique in the corpus and names its files."""

    item_id: str  # "<source>/<split>/<name>"
    source: str
    split: str
    params: dict[str, Any]
    estimate: float  # expected seconds of audio (plans batch sizes only)


@dataclass
class ItemResult:
    """The segments an item produced, or why it failed."""

    item_id: str
    records: list[SegmentRecord] = field(default_factory=list)
    error: str = ""
    elapsed: float = 0.0
    reused: bool = False

    @property
    def duration(self) -> float:
        return float(sum(r.duration for r in self.records))


@dataclass
class Segment:
    """Audio of one output segment plus its manifest fields (except path, split, rate)."""

    audio: np.ndarray  # mono float32 at the build's sample rate
    speaker: str = ""
    piece: str = ""
    language: str = ""
    origin: str = ""
    bandwidth_hz: float = 0.0
    text: str = ""


def safe_name(s: str) -> str:
    """A file-name-safe rendering of an id ('/' becomes '__')."""
    s = s.replace("/", "__")
    return re.sub(r"[^A-Za-z0-9._+#=-]", "_", s)


def record_path(ctx: BuildContext, item: WorkItem) -> Path:
    return Path(ctx.out_dir) / ".items" / item.source / (safe_name(item.item_id) + ".json")


def segment_relpath(item: WorkItem, k: int) -> str:
    name = item.item_id.split("/", 2)[2] if item.item_id.count("/") >= 2 else item.item_id
    return f"audio/{item.source}/{item.split}/{safe_name(name)}_{k:02d}.flac"


# -- signal helpers ---------------------------------------------------------------------
def split_even(x: np.ndarray, sample_rate: int, max_seconds: float) -> list[np.ndarray]:
    """Cut ``x`` into the fewest equal-length pieces of at most ``max_seconds``."""
    max_len = max(1, int(max_seconds * sample_rate))
    n = max(1, int(np.ceil(len(x) / max_len)))
    size = int(np.ceil(len(x) / n))
    return [x[i:i + size] for i in range(0, len(x), size)]


def trim_silence(x: np.ndarray, sample_rate: int, threshold_db: float = TRIM_DB,
                 margin_s: float = 0.1) -> np.ndarray:
    """Drop leading and trailing samples quieter than ``threshold_db`` below the peak,
    keeping ``margin_s`` seconds on each side."""
    peak = float(np.max(np.abs(x))) if len(x) else 0.0
    if peak <= 0:
        return x[:0]
    loud = np.flatnonzero(np.abs(x) > peak * 10 ** (threshold_db / 20))
    m = int(margin_s * sample_rate)
    return x[max(0, loud[0] - m): min(len(x), loud[-1] + 1 + m)]


def _to_rate(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    return resample(np.asarray(x, dtype=np.float32)[None, :], sr_in, sr_out)[0]


@functools.lru_cache(maxsize=2)
def _decoded_track(path: str) -> np.ndarray:
    return decode_g722(path)


# -- producers --------------------------------------------------------------------------
def _speech_real(item: WorkItem, ctx: BuildContext) -> list[Segment]:
    p = item.params
    x = normalize_rms(_to_rate(decode_g722(p["path"]), G722_RATE, ctx.sample_rate))
    pieces = [c for c in split_even(x, ctx.sample_rate, ctx.segment_seconds)
              if len(c) >= MIN_SEGMENT_S * ctx.sample_rate]
    text = prompt_transcripts(p["language"]).get(p["key"].split("/", 1)[1], "") if len(pieces) == 1 else ""
    origin = f"{p['package']}:{p['key']}.g722"
    return [Segment(c, speaker=p["speaker"], language=p["language"], origin=origin,
                    bandwidth_hz=G722_BANDWIDTH_HZ, text=text) for c in pieces]


def _speech_tts(item: WorkItem, ctx: BuildContext) -> list[Segment]:
    p = item.params
    voice = TtsVoice(p["engine"], p["voice"], p["variant"], p["group"])
    rng = item_rng(ctx.seed, item.item_id)
    text = pick_utterance(rng, load_sentences())
    prosody = Prosody.draw(rng)
    y, sr_in = synthesize(voice, text, prosody)
    y = trim_silence(y, sr_in)
    if len(y) < MIN_SEGMENT_S * sr_in:
        raise AudioError(f"{voice.speaker_id} produced no audible speech for {text[:40]!r}")
    y = normalize_rms(_to_rate(y, sr_in, ctx.sample_rate))
    pieces = split_even(y, ctx.sample_rate, ctx.segment_seconds)
    origin = f"{voice.speaker_id} rate={prosody.rate:.3f} pitch={prosody.pitch:.3f}"
    bw = min(sr_in, ctx.sample_rate) / 2.0
    return [Segment(c, speaker=voice.speaker_id, language="en", origin=origin, bandwidth_hz=bw,
                    text=text if len(pieces) == 1 else "") for c in pieces]


def _music_real(item: WorkItem, ctx: BuildContext) -> list[Segment]:
    p = item.params
    x = _decoded_track(p["path"])
    n = int(ctx.segment_seconds * G722_RATE)
    chunk = x[p["index"] * n:(p["index"] + 1) * n]
    if len(chunk) < MIN_SEGMENT_S * G722_RATE:
        raise AudioError(f"chunk {p['index']} of {p['track']} is empty")
    y = normalize_rms(_to_rate(chunk, G722_RATE, ctx.sample_rate))
    start = p["index"] * ctx.segment_seconds
    return [Segment(y, piece=p["piece"], origin=f"{p['package']}:{p['track']}.g722@{start:g}s",
                    bandwidth_hz=G722_BANDWIDTH_HZ)]


def _music_rendered(item: WorkItem, ctx: BuildContext) -> list[Segment]:
    p = item.params
    piece = Piece(Path(p["path"]), p["group"], p["number"])
    r = render_piece(piece, ctx.sample_rate, ctx.piece_seconds, p["style"])
    y = trim_silence(r.audio, ctx.sample_rate, margin_s=0.2)
    if len(y) < MIN_MUSIC_TAIL_S * ctx.sample_rate:
        raise AudioError(f"{piece.piece_id} rendered to silence")
    y = normalize_rms(y)
    n = int(ctx.segment_seconds * ctx.sample_rate)
    pieces = [y[i:i + n] for i in range(0, len(y), n)]
    if len(pieces) > 1 and len(pieces[-1]) < MIN_MUSIC_TAIL_S * ctx.sample_rate:
        pieces.pop()
    origin = f"{piece.piece_id} style={p['style']} fluidsynth FluidR3_GM"
    return [Segment(c, piece=piece.piece_id, origin=f"{origin} @{k * ctx.segment_seconds:g}s")
            for k, c in enumerate(pieces)]


def _read_mono(ctx: BuildContext, relpath: str) -> np.ndarray:
    audio, sr = read_audio(Path(ctx.out_dir) / relpath)
    if sr != ctx.sample_rate:
        raise AudioError(f"{relpath} is at {sr} Hz, expected {ctx.sample_rate} Hz")
    return audio.mean(axis=0)


def _mixture(item: WorkItem, ctx: BuildContext) -> list[Segment]:
    p = item.params
    rng = item_rng(ctx.seed, item.item_id)
    fg = _read_mono(ctx, p["fg"]["path"])
    n = len(fg)
    bg_spec = p["bg"]
    if bg_spec["kind"] == "noise":
        bg = colored_noise(n, bg_spec["color"], rng)
        what = f"{bg_spec['color']} noise"
    else:
        bg = np.zeros(n, dtype=np.float32)
        for rel in bg_spec["paths"]:
            bg += normalize_rms(fit_to(_read_mono(ctx, rel), n, rng))
        what = f"{bg_spec['kind']}({', '.join(bg_spec['paths'])})"
    res = mix(fg, bg, float(p["snr_db"]), rng, ctx.sample_rate)
    room = f" rt60={res.rt60:.2f}s" if res.rt60 is not None else ""
    origin = (f"{p['fg']['path']} + {what} snr={res.snr_db:.1f}dB gain={res.gain_db:.1f}dB{room}")
    return [Segment(res.audio, speaker=p["fg"]["speaker"], piece=bg_spec.get("piece", ""),
                    language=p["fg"]["language"], origin=origin,
                    bandwidth_hz=float(p["bandwidth_hz"]))]


PRODUCERS: dict[str, Callable[[WorkItem, BuildContext], list[Segment]]] = {
    "speech-real": _speech_real,
    "speech-tts": _speech_tts,
    "music-real": _music_real,
    "music-rendered": _music_rendered,
    "mixture": _mixture,
}


# -- running and recording --------------------------------------------------------------
def params_digest(item: WorkItem) -> str:
    """A digest of what an item is made from; a record with another digest is stale (a
    mixture slot whose speech pool changed when the corpus grew)."""
    blob = json.dumps({"source": item.source, "split": item.split, "params": item.params}, sort_keys=True)
    return hashlib.sha1(blob.encode("utf-8")).hexdigest()


def load_result(ctx: BuildContext, item: WorkItem) -> ItemResult | None:
    """The recorded result of an item, or None when it has not finished (or is stale)."""
    path = record_path(ctx, item)
    if not path.is_file():
        return None
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
        if d.get("params_digest") != params_digest(item):
            return None
        return ItemResult(item.item_id, [SegmentRecord.from_dict(r) for r in d["records"]],
                          d.get("error", ""), 0.0, True)
    except (json.JSONDecodeError, KeyError, TypeError, ValueError):
        return None  # damaged record: redo the item


def _save_result(ctx: BuildContext, item: WorkItem, result: ItemResult) -> None:
    blob = json.dumps({"item_id": item.item_id, "error": result.error, "params_digest": params_digest(item),
                       "records": [asdict(r) for r in result.records]}, sort_keys=True, indent=0)
    atomic_write_bytes(record_path(ctx, item), blob.encode("utf-8"))


def run_item(item: WorkItem, ctx: BuildContext) -> ItemResult:
    """Make (or reuse) an item's segments; see the module docstring for the rules."""
    t0 = time.perf_counter()
    out = Path(ctx.out_dir)
    previous = load_result(ctx, item)
    if previous is not None and (previous.error or all((out / r.path).is_file() for r in previous.records)):
        return previous
    try:
        segments = PRODUCERS[item.source](item, ctx)
    except MissingToolError:
        raise
    except AudioError as exc:
        result = ItemResult(item.item_id, [], str(exc), time.perf_counter() - t0)
        _save_result(ctx, item, result)
        return result
    records = []
    for k, seg in enumerate(segments):
        rel = segment_relpath(item, k)
        if previous is None or not (out / rel).is_file():
            write_audio(out / rel, seg.audio[None, :], ctx.sample_rate)
        records.append(SegmentRecord(
            path=rel, duration=round(len(seg.audio) / ctx.sample_rate, 6), sample_rate=ctx.sample_rate,
            source=item.source, speaker=seg.speaker, piece=seg.piece, language=seg.language,
            split=item.split, origin=seg.origin, bandwidth_hz=float(seg.bandwidth_hz), text=seg.text))
    result = ItemResult(item.item_id, records, "", time.perf_counter() - t0)
    _save_result(ctx, item, result)
    return result
