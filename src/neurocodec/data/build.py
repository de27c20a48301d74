"""``build_corpus``: a training corpus made only from what Debian and PyPI packages carry.

Sources (see ``docs/corpus.md``): ``speech-real`` (Asterisk prompts, 2 professional
speakers), ``speech-tts`` (espeak-ng / flite / festival speakers reading *Alice in
Wonderland*), ``music-real`` (Asterisk music on hold), ``music-rendered`` (music21 scores
through FluidSynth) and ``mixture`` (speech + music / babble / noise at a random SNR, random
gain, reverberation with probability 0.2, after encodec2022 §4.1).

Budget.  ``hours`` is shared between the chosen sources by :data:`DEFAULT_SHARES`
(renormalized) and within a source between the splits by the split fractions
(renormalized over the splits that source can fill: real speech has no valid speaker).
A source that runs out of material (there is 1.3 h of real speech and 18 min of real
music in all) stops short; ``build.json`` records requested and obtained seconds.

Determinism.  Each (source, split) has a candidate sequence fixed by the seed; items are
made in batches (in parallel with ``jobs`` processes) and the corpus keeps the shortest
prefix of each sequence that reaches its budget.  What an item contains depends only on
the seed and the item, so the manifest and every FLAC byte are the same for a seed
whatever ``jobs`` is, and an interrupted build resumes where it stopped.  Splits are
assigned per speaker / piece group independent of the seed (``splits.assign_groups``).
"""

from __future__ import annotations

import json
import math
import os
import sys
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from itertools import count
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from ..audio import atomic_write_bytes
from ..errors import MissingToolError, UserError
from .items import BuildContext, ItemResult, WorkItem, load_result, run_item
from .manifest import SOURCES, SPLITS, Manifest, SegmentRecord
from .music import STYLES, list_pieces, soundfont
from .sources import REAL_SPEECH_FOLDERS, real_music_files, real_speech_files, require_tool
from .splits import assign_groups, check_fractions, item_rng
from .text import load_sentences
from .tts import TtsVoice, list_voices

SAMPLE_RATES = (16000, 24000, 48000)
DEFAULT_SHARES = {"speech-real": 0.25, "speech-tts": 0.25, "music-real": 0.1, "music-rendered": 0.2,
                  "mixture": 0.2}
SPEECH_SOURCES = ("speech-real", "speech-tts")
MUSIC_SOURCES = ("music-real", "music-rendered")
#: mixture background kinds and their probabilities (renormalized over those available)
BACKGROUNDS = {"music": 0.5, "babble": 0.25, "noise": 0.25}
SNR_RANGE_DB = (-5.0, 20.0)
#: order in which TTS engines take turns (espeak-ng has by far the most speakers)
TTS_ENGINE_CYCLE = ("espeak-ng", "flite", "espeak-ng", "festival")
BUILD_FORMAT = 1
#: a (source, split) whose last this many items all failed is treated as out of material
MAX_FAILURES_IN_A_ROW = 25


class CorpusBuildError(UserError):
    """Bad build arguments or an output folder that cannot be used."""


@dataclass(frozen=True)
class StreamReport:
    """What one (source, split) asked for and got."""

    source: str
    split: str
    requested_s: float
    obtained_s: float
    items: int
    failed: int
    exhausted: bool


@dataclass
class _Stream:
    source: str
    split: str
    budget: float
    candidates: Iterator[WorkItem]
    order: list[WorkItem] = field(default_factory=list)
    results: dict[str, ItemResult] = field(default_factory=dict)
    exhausted: bool = False

    def prefix(self) -> tuple[list[ItemResult], float, bool]:
        """Results of the shortest finished prefix reaching the budget."""
        acc, out = 0.0, []
        for it in self.order:
            if acc >= self.budget:
                return out, acc, True
            r = self.results.get(it.item_id)
            if r is None:
                return out, acc, False
            out.append(r)
            acc += r.duration
        return out, acc, acc >= self.budget or self.exhausted

    def satisfied(self) -> bool:
        return self.prefix()[2]

    def next_batch(self, max_items: int) -> list[WorkItem]:
        if self.exhausted or self.budget <= 0:
            return []
        done, acc, ok = self.prefix()
        if ok or len(self.order) > len(done):
            return []
        tail = done[-MAX_FAILURES_IN_A_ROW:]
        if len(tail) == MAX_FAILURES_IN_A_ROW and all(r.error for r in tail):
            self.exhausted = True
            return []
        durs = [r.duration for r in done if r.duration > 0]
        est = sum(durs) / len(durs) if durs else None
        batch: list[WorkItem] = []
        remaining = self.budget - acc
        while remaining > 0 and len(batch) < max_items:
            try:
                it = next(self.candidates)
            except StopIteration:
                self.exhausted = True
                break
            batch.append(it)
            remaining -= est if est is not None else max(it.estimate, 0.5)
        self.order.extend(batch)
        return batch

    def report(self) -> StreamReport:
        done, acc, _ = self.prefix()
        return StreamReport(self.source, self.split, round(self.budget, 3), round(acc, 3), len(done),
                            sum(1 for r in done if r.error), self.exhausted and acc < self.budget)


# -- candidate sequences ----------------------------------------------------------------
def _shuffled(seq: Sequence, seed: int, *key: object) -> list:
    seq = list(seq)
    perm = item_rng(seed, "plan", *key).permutation(len(seq))
    return [seq[i] for i in perm]


def _real_speech_candidates(split: str, seed: int) -> Iterator[WorkItem]:
    packages = {folder: pkg for folder, _s, _l, pkg in REAL_SPEECH_FOLDERS}
    files = [f for f in real_speech_files() if f.split == split]
    for f in _shuffled(files, seed, "speech-real", split):
        yield WorkItem(f"speech-real/{split}/{f.key}", "speech-real", split,
                       {"path": str(f.path), "key": f.key, "speaker": f.speaker, "language": f.language,
                        "package": packages[f.key.split("/", 1)[0]]}, f.duration)


def tts_splits(voices: Sequence[TtsVoice], valid: float, test: float) -> dict[str, str]:
    """Speaker id -> split; espeak-ng variants and recorded persons are split separately."""
    out: dict[str, str] = {}
    espeak = {v.group for v in voices if v.engine == "espeak-ng"}
    persons = {v.group for v in voices if v.engine != "espeak-ng"}
    by_group = {**assign_groups(espeak, valid, test, "tts-espeak"), **assign_groups(persons, valid, test, "tts-person")}
    for v in voices:
        out[v.speaker_id] = by_group[v.group]
    return out


def _tts_candidates(split: str, seed: int, valid: float, test: float) -> Iterator[WorkItem]:
    voices = list_voices()
    splits = tts_splits(voices, valid, test)
    by_engine = {e: _shuffled([v for v in voices if v.engine == e and splits[v.speaker_id] == split],
                              seed, "speech-tts", split, e) for e in dict.fromkeys(TTS_ENGINE_CYCLE)}
    cycle = [e for e in TTS_ENGINE_CYCLE if by_engine[e]]
    if not cycle:
        return
    turns = {e: 0 for e in by_engine}
    for k in count():
        e = cycle[k % len(cycle)]
        vs = by_engine[e]
        i = turns[e]
        turns[e] += 1
        v = vs[i % len(vs)]
        yield WorkItem(f"speech-tts/{split}/{v.speaker_id}/{i // len(vs):04d}", "speech-tts", split,
                       {"engine": v.engine, "voice": v.voice, "variant": v.variant, "group": v.group}, 4.0)


def _music_real_candidates(split: str, seed: int, segment_seconds: float) -> Iterator[WorkItem]:
    chunks = []
    for f in real_music_files():
        if f.split != split:
            continue
        n = int(f.duration // segment_seconds) + (1 if f.duration % segment_seconds >= 1.0 else 0)
        chunks += [(f, k) for k in range(n)]
    for f, k in _shuffled(chunks, seed, "music-real", split):
        yield WorkItem(f"music-real/{split}/{f.key}/{k:03d}", "music-real", split,
                       {"path": str(f.path), "track": f.key, "piece": f.piece, "index": k,
                        "package": "asterisk-moh-opsound-g722"}, segment_seconds)


def music_splits(valid: float, test: float) -> dict[str, str]:
    """music21 corpus file (group) -> split."""
    return assign_groups({p.group for p in list_pieces()}, valid, test, "music21")


def _music_rendered_candidates(split: str, seed: int, valid: float, test: float,
                               piece_seconds: float) -> Iterator[WorkItem]:
    pieces = list_pieces()
    splits = music_splits(valid, test)
    by_group: dict[str, list] = {}
    for p in pieces:
        if splits[p.group] == split:
            by_group.setdefault(p.group, []).append(p)
    for group in _shuffled(sorted(by_group), seed, "music-rendered", split):
        rng = item_rng(seed, "piece-choice", group)
        piece = by_group[group][int(rng.integers(len(by_group[group])))]
        style = STYLES[int(rng.integers(len(STYLES)))]
        yield WorkItem(f"music-rendered/{split}/{piece.piece_id.split(':', 1)[1]}", "music-rendered", split,
                       {"path": str(piece.path), "group": piece.group, "number": piece.number, "style": style},
                       0.6 * piece_seconds)


def _mixture_candidates(split: str, seed: int, records: Sequence[SegmentRecord]) -> Iterator[WorkItem]:
    speech = sorted((r for r in records if r.split == split and r.source in SPEECH_SOURCES), key=lambda r: r.path)
    music = sorted((r for r in records if r.split == split and r.source in MUSIC_SOURCES), key=lambda r: r.path)
    if not speech:
        return
    kinds = [k for k in BACKGROUNDS if k != "music" or music]
    if len({r.speaker for r in speech}) < 2:
        kinds = [k for k in kinds if k != "babble"]
    probs = [BACKGROUNDS[k] for k in kinds]
    probs = [p / sum(probs) for p in probs]
    for i in count():
        rng = item_rng(seed, "mixture-plan", split, i)
        fg = speech[int(rng.integers(len(speech)))]
        kind = kinds[int(rng.choice(len(kinds), p=probs))]
        bg: dict = {"kind": kind}
        bw = fg.bandwidth_hz
        if kind == "music":
            m = music[int(rng.integers(len(music)))]
            bg.update(paths=[m.path], piece=m.piece)
            bw = max(bw, m.bandwidth_hz) if bw and m.bandwidth_hz else 0.0
        elif kind == "babble":
            others = [r for r in speech if r.speaker != fg.speaker]
            picks = [others[int(j)] for j in rng.choice(len(others), size=min(3, len(others)), replace=False)]
            bg.update(paths=[r.path for r in picks])
            for r in picks:
                bw = max(bw, r.bandwidth_hz) if bw and r.bandwidth_hz else 0.0
        else:
            bg.update(color=["white", "pink", "brown"][int(rng.integers(3))])
            bw = 0.0
        snr = float(rng.uniform(*SNR_RANGE_DB))
        yield WorkItem(f"mixture/{split}/{i:05d}", "mixture", split,
                       {"fg": {"path": fg.path, "speaker": fg.speaker, "language": fg.language},
                        "bg": bg, "snr_db": round(snr, 3), "bandwidth_hz": bw}, fg.duration)


# -- budget -------------------------------------------------------------------------------
def _split_fractions(valid: float, test: float, available: Iterable[str]) -> dict[str, float]:
    base = {"train": 1.0 - valid - test, "valid": valid, "test": test}
    avail = [s for s in SPLITS if s in set(available) and base[s] > 0]
    total = sum(base[s] for s in avail)
    return {s: (base[s] / total if s in avail else 0.0) for s in SPLITS}


#: Debian packages (or PyPI for music21) that each source needs
SOURCE_PACKAGES = {
    "speech-real": "apt-get install ffmpeg asterisk-core-sounds-en-g722 asterisk-core-sounds-es-g722 "
                   "asterisk-core-sounds-fr-g722",
    "speech-tts": "apt-get install espeak-ng flite festival festvox-kallpc16k festvox-us-slt-hts",
    "music-real": "apt-get install ffmpeg asterisk-moh-opsound-g722",
    "music-rendered": "apt-get install fluidsynth fluid-soundfont-gm; pip install music21",
}


def _check_requirements(source: str, valid: float, test: float) -> set[str]:
    """The splits ``source`` can fill; :class:`MissingToolError` if it has no material or tool."""
    hint = f"(install: {SOURCE_PACKAGES.get(source, '')}, or leave '{source}' out of --sources)"
    try:
        if source in ("speech-real", "music-real"):
            require_tool("ffmpeg")
        if source == "music-rendered":
            require_tool("fluidsynth")
            soundfont()
        if source == "speech-tts":
            load_sentences()
        splits = _available_splits(source, valid, test)
    except MissingToolError as exc:
        raise MissingToolError(f"{source}: {exc} {hint}") from None
    if not splits:
        raise MissingToolError(f"{source}: no material is installed {hint}")
    return splits


def _available_splits(source: str, valid: float, test: float) -> set[str]:
    if source == "speech-real":
        return {f.split for f in real_speech_files()}
    if source == "music-real":
        return {f.split for f in real_music_files()}
    if source == "speech-tts":
        return set(tts_splits(list_voices(), valid, test).values())
    if source == "music-rendered":
        return set(music_splits(valid, test).values())
    return set(SPLITS)


# -- execution ----------------------------------------------------------------------------
def _run_batch(items: list[WorkItem], ctx: BuildContext, pool: ProcessPoolExecutor | None,
               on_done) -> None:
    if pool is None:
        for it in items:
            on_done(it, run_item(it, ctx))
        return
    futures = {pool.submit(run_item, it, ctx): it for it in items}
    pending = set(futures)
    while pending:
        done, pending = wait(pending, return_when=FIRST_COMPLETED)
        for f in done:
            on_done(futures[f], f.result())


def _run_streams(streams: list[_Stream], ctx: BuildContext, pool, bar, max_batch: int) -> None:
    def on_done(item: WorkItem, result: ItemResult) -> None:
        st = by_key[(item.source, item.split)]
        st.results[item.item_id] = result
        if bar is not None:
            progress[0] += min(result.duration, max(0.0, st.budget))
            if int(progress[0]) > bar.n:
                bar.update(int(progress[0]) - bar.n)

    by_key = {(s.source, s.split): s for s in streams}
    progress = [float(bar.n) if bar is not None else 0.0]
    while True:
        batch: list[WorkItem] = []
        for st in streams:
            # items already recorded on disk are collected without a worker
            new = st.next_batch(max_batch)
            for it in new:
                prev = load_result(ctx, it)
                if prev is not None and (prev.error or all((Path(ctx.out_dir) / r.path).is_file()
                                                           for r in prev.records)):
                    on_done(it, prev)
                else:
                    batch.append(it)
        if not batch:
            if all(st.satisfied() or st.exhausted or st.budget <= 0 for st in streams):
                break
            continue
        _run_batch(batch, ctx, pool, on_done)


def _check_out_dir(out: Path, ctx: BuildContext) -> None:
    cfg_path = out / "build.json"
    if out.exists() and not out.is_dir():
        raise CorpusBuildError(f"--out {out} exists and is not a folder")
    if cfg_path.is_file():
        old = json.loads(cfg_path.read_text(encoding="utf-8"))
        for key in ("sample_rate", "seed", "segment_seconds", "piece_seconds"):
            if old.get(key) != getattr(ctx, key):
                raise CorpusBuildError(
                    f"{out} holds a corpus built with {key}={old.get(key)}, not {getattr(ctx, key)}; "
                    "use a new --out folder")
    elif out.is_dir() and any(out.iterdir()):
        raise CorpusBuildError(f"--out {out} is not empty and holds no corpus (no build.json); use a new folder")


def _prune(out: Path, keep: set[str]) -> None:
    """Delete FLACs and item records of items outside the selected prefixes."""
    audio = out / "audio"
    if audio.is_dir():
        for p in audio.rglob("*.flac"):
            if p.relative_to(out).as_posix() not in keep:
                p.unlink()
        for d in sorted((d for d in audio.rglob("*") if d.is_dir()), key=lambda d: -len(d.parts)):
            if not any(d.iterdir()):
                d.rmdir()


def build_corpus(out_dir: str | os.PathLike, sample_rate: int = 24000, hours: float = 0.5, seed: int = 0,
                 sources: Sequence[str] = SOURCES, progress: bool = True, jobs: int = 1,
                 valid: float = 0.1, test: float = 0.1, segment_seconds: float = 10.0,
                 piece_seconds: float = 30.0) -> Manifest:
    """Build (or resume) a corpus in ``out_dir`` and return its manifest.

    Writes ``audio/<source>/<split>/*.flac`` (mono, 16-bit, ``sample_rate``), one JSON record
    per finished item under ``.items/``, ``manifest.jsonl`` and ``build.json`` (settings and a
    per-(source, split) report of requested and obtained seconds).
    """
    if int(sample_rate) not in SAMPLE_RATES:
        raise CorpusBuildError(f"sample rate {sample_rate} Hz is not supported (use 16000, 24000 or 48000)")
    if not (isinstance(hours, (int, float)) and math.isfinite(hours) and hours > 0):
        raise CorpusBuildError(f"--hours must be a positive number, not {hours}")
    sources = tuple(dict.fromkeys(sources))
    unknown = [s for s in sources if s not in SOURCES]
    if unknown or not sources:
        raise CorpusBuildError(f"unknown source(s) {', '.join(unknown) or '(none)'} (choose from {', '.join(SOURCES)})")
    if "mixture" in sources and not any(s in sources for s in SPEECH_SOURCES):
        raise CorpusBuildError("mixtures need a speech source: add speech-real or speech-tts to --sources")
    if int(jobs) < 1:
        raise CorpusBuildError(f"--jobs must be at least 1, not {jobs}")
    if int(seed) < 0:
        raise CorpusBuildError(f"--seed must be a non-negative integer, not {seed}")
    if not (1.0 <= segment_seconds <= 60.0) or not (segment_seconds <= piece_seconds <= 600.0):
        raise CorpusBuildError("need 1 <= segment_seconds <= piece_seconds <= 600")
    check_fractions(valid, test)
    out = Path(out_dir)
    ctx = BuildContext(str(out.resolve()), int(sample_rate), int(seed), float(segment_seconds), float(piece_seconds))
    _check_out_dir(out, ctx)
    available = {src: _check_requirements(src, valid, test) for src in sources if src != "mixture"}
    out.mkdir(parents=True, exist_ok=True)
    config = {"format": BUILD_FORMAT, "sample_rate": ctx.sample_rate, "seed": ctx.seed,
              "segment_seconds": ctx.segment_seconds, "piece_seconds": ctx.piece_seconds}
    if not (out / "build.json").is_file():
        atomic_write_bytes(out / "build.json", json.dumps(config, indent=1).encode())

    total_share = sum(DEFAULT_SHARES[s] for s in sources)
    budgets: dict[tuple[str, str], float] = {}
    for src in sources:
        frac = _split_fractions(valid, test, available.get(src, set(SPLITS)))
        for split in SPLITS:
            budgets[(src, split)] = hours * 3600.0 * DEFAULT_SHARES[src] / total_share * frac[split]

    def make_candidates(src: str, split: str, phase1: Sequence[SegmentRecord]) -> Iterator[WorkItem]:
        if src == "speech-real":
            return _real_speech_candidates(split, ctx.seed)
        if src == "speech-tts":
            return _tts_candidates(split, ctx.seed, valid, test)
        if src == "music-real":
            return _music_real_candidates(split, ctx.seed, ctx.segment_seconds)
        if src == "music-rendered":
            return _music_rendered_candidates(split, ctx.seed, valid, test, ctx.piece_seconds)
        return _mixture_candidates(split, ctx.seed, phase1)

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=round(sum(budgets.values())), unit="s", desc=f"corpus {out.name}",
                   file=sys.stderr, dynamic_ncols=True)
    pool = ProcessPoolExecutor(max_workers=int(jobs)) if int(jobs) > 1 else None
    max_batch = max(4, 4 * int(jobs))
    streams: list[_Stream] = []
    try:
        phase1 = [_Stream(src, split, budgets[(src, split)], make_candidates(src, split, ()))
                  for src in sources if src != "mixture" for split in SPLITS]
        _run_streams(phase1, ctx, pool, bar, max_batch)
        streams = phase1
        if "mixture" in sources:
            recs = [r for st in phase1 for res in st.prefix()[0] for r in res.records]
            have = {r.split for r in recs if r.source in SPEECH_SOURCES}
            frac = _split_fractions(valid, test, have)
            total = sum(budgets[("mixture", s)] for s in SPLITS)
            phase2 = [_Stream("mixture", split, total * frac[split], make_candidates("mixture", split, recs))
                      for split in SPLITS]
            _run_streams(phase2, ctx, pool, bar, max_batch)
            streams = phase1 + phase2
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        if bar is not None:
            bar.close()

    records = sorted((r for st in streams for res in st.prefix()[0] for r in res.records), key=lambda r: r.path)
    _prune(out, {r.path for r in records})
    manifest = Manifest(records, out.resolve())
    manifest.save(out / "manifest.jsonl")
    report = {**config, "hours": hours, "sources": list(sources), "valid": valid, "test": test,
              "streams": [asdict(st.report()) for st in streams]}
    atomic_write_bytes(out / "build.json", json.dumps(report, indent=1).encode())
    if progress:
        for st in streams:
            rep = st.report()
            if rep.exhausted:
                print(f"note: {rep.source}/{rep.split} ran out of material: {rep.obtained_s / 60:.1f} of "
                      f"{rep.requested_s / 60:.1f} min", file=sys.stderr)
    return manifest
