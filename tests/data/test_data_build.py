"""build_corpus: files, manifest columns, leak-free splits, determinism, resume, errors."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
from pathlib import Path

import pytest
import soundfile as sf

from neurocodec.data import build as build_mod
from neurocodec.data.build import CorpusBuildError, build_corpus
from neurocodec.data.manifest import SOURCES, Manifest
from neurocodec.data.sources import real_music_files, real_speech_files
from neurocodec.errors import MissingToolError, UserError

TOOLS = ("ffmpeg", "espeak-ng", "flite", "text2wave", "fluidsynth")
MISSING = [t for t in TOOLS if shutil.which(t) is None]
HAVE_DATA = bool(real_speech_files()) and bool(real_music_files())
MISSING_PY = [m for m in ("music21", "pyroomacoustics") if importlib.util.find_spec(m) is None]
needs_tools = [
    pytest.mark.tools,
    pytest.mark.skipif(bool(MISSING), reason=f"missing tools: {', '.join(MISSING)}"),
    pytest.mark.skipif(not HAVE_DATA, reason="asterisk-core-sounds-*-g722 / asterisk-moh-opsound-g722 not installed"),
    pytest.mark.skipif(bool(MISSING_PY), reason=f"pip install {' '.join(MISSING_PY)} (the 'data' extra)"),
]
COLUMNS = {"path", "duration", "sample_rate", "source", "speaker", "piece", "language", "split", "origin",
           "bandwidth_hz", "text"}
TINY = dict(sample_rate=16000, hours=0.012, seed=0, progress=False, piece_seconds=12.0)


def _md5s(root: Path, manifest: Manifest) -> dict[str, str]:
    return {r.path: hashlib.md5((root / r.path).read_bytes()).hexdigest() for r in manifest}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus") / "c"
    return out, build_corpus(out, **TINY)


def _apply(fn):
    for m in needs_tools:
        fn = m(fn)
    return fn


@_apply
def test_tiny_build_has_every_source_and_readable_flacs(tiny):
    out, m = tiny
    assert {r.source for r in m} == set(SOURCES)
    lines = (out / "manifest.jsonl").read_text().splitlines()
    assert len(lines) == len(m) and set(json.loads(lines[0])) == COLUMNS
    for r in m:
        info = sf.info(str(out / r.path))
        assert info.format == "FLAC" and info.samplerate == 16000 and info.channels == 1
        assert info.frames == round(r.duration * 16000)
        assert 0 < r.duration <= 10.0 + 1e-6
        assert r.path.startswith(f"audio/{r.source}/{r.split}/")
        assert (r.speaker != "") == (r.source in ("speech-real", "speech-tts", "mixture"))
        assert (r.piece != "") == (r.source in ("music-real", "music-rendered")) or r.source == "mixture"
    assert {p.relative_to(out).as_posix() for p in (out / "audio").rglob("*.flac")} == {r.path for r in m}
    assert Manifest.load(out / "manifest.jsonl").records == m.records


@_apply
def test_splits_share_no_speaker_or_piece(tiny):
    _, m = tiny
    assert m.leaks() == {}
    for split in ("train", "valid", "test"):
        assert len(m.filter(split=split)) > 0
    real = m.filter(source="speech-real")
    assert {r.speaker for r in real.filter(split="test")} == {"asterisk:june"}
    assert {r.speaker for r in real.filter(split="train")} == {"asterisk:allison"}
    mixtures = m.filter(source="mixture")
    by_path = {r.path: r for r in m}
    for r in mixtures:  # mixtures only use material of their own split
        for part in r.origin.replace("(", " ").replace(")", " ").replace(",", " ").split():
            if part.startswith("audio/"):
                assert by_path[part].split == r.split


@_apply
def test_budget_is_met_per_stream(tiny):
    out, m = tiny
    report = json.loads((out / "build.json").read_text())
    for st in report["streams"]:
        if st["requested_s"] > 0 and not st["exhausted"]:
            assert st["obtained_s"] >= st["requested_s"]
            got = sum(r.duration for r in m if r.source == st["source"] and r.split == st["split"])
            assert got == pytest.approx(st["obtained_s"], abs=0.01)
    assert m.duration >= 0.012 * 3600 * 0.95


@_apply
def test_resume_recreates_only_the_deleted_file(tiny):
    out, m = tiny
    before = _md5s(out, m)
    mtimes = {r.path: (out / r.path).stat().st_mtime_ns for r in m}
    victim = next(r.path for r in m if r.source == "music-rendered")
    (out / victim).unlink()
    again = build_corpus(out, **TINY)
    assert again.records == m.records
    assert _md5s(out, again) == before
    changed = [p for p, t in mtimes.items() if (out / p).stat().st_mtime_ns != t]
    assert changed == [victim]


@_apply
def test_existing_corpus_with_other_settings_is_refused(tiny):
    out, _ = tiny
    with pytest.raises(CorpusBuildError, match="sample_rate"):
        build_corpus(out, **{**TINY, "sample_rate": 24000})
    with pytest.raises(CorpusBuildError, match="seed"):
        build_corpus(out, **{**TINY, "seed": 1})


@_apply
def test_same_seed_gives_same_bytes_with_two_processes(tmp_path):
    kw = {**TINY, "sources": ("speech-real", "speech-tts", "mixture"), "hours": 0.006}
    a = build_corpus(tmp_path / "a", **kw)
    b = build_corpus(tmp_path / "b", **{**kw, "jobs": 2})
    assert a.records == b.records
    assert _md5s(tmp_path / "a", a) == _md5s(tmp_path / "b", b)


@_apply
def test_another_seed_gives_other_material(tiny, tmp_path):
    _, m = tiny
    c = build_corpus(tmp_path / "c", **{**TINY, "seed": 5, "sources": ("speech-tts",), "hours": 0.002})
    assert {r.origin for r in c}.isdisjoint({r.origin for r in m})


@_apply
def test_growing_a_corpus_equals_building_it_at_once(tmp_path):
    kw = {**TINY, "sources": ("speech-tts", "mixture")}
    build_corpus(tmp_path / "grown", **{**kw, "hours": 0.004})
    grown = build_corpus(tmp_path / "grown", **{**kw, "hours": 0.009})
    fresh = build_corpus(tmp_path / "fresh", **{**kw, "hours": 0.009})
    assert grown.records == fresh.records
    assert _md5s(tmp_path / "grown", grown) == _md5s(tmp_path / "fresh", fresh)
    flacs = {p.relative_to(tmp_path / "grown").as_posix() for p in (tmp_path / "grown" / "audio").rglob("*.flac")}
    assert flacs == {r.path for r in grown}


@pytest.mark.slow
@_apply
def test_full_determinism_at_24k(tmp_path):
    kw = dict(sample_rate=24000, hours=0.03, seed=3, progress=False)
    a = build_corpus(tmp_path / "a", **kw)
    b = build_corpus(tmp_path / "b", **kw, jobs=2)
    assert a.records == b.records and _md5s(tmp_path / "a", a) == _md5s(tmp_path / "b", b)
    assert {r.source for r in a} == set(SOURCES)


@pytest.mark.parametrize("kwargs,match", [
    ({"sample_rate": 22050}, "22050"),
    ({"hours": 0}, "hours"),
    ({"hours": float("nan")}, "hours"),
    ({"sources": ("speech-real", "podcasts")}, "podcasts"),
    ({"sources": ("music-real", "mixture")}, "speech source"),
    ({"jobs": 0}, "jobs"),
    ({"valid": 0.6, "test": 0.5}, "fractions"),
])
def test_bad_arguments_are_user_errors(tmp_path, kwargs, match):
    with pytest.raises(UserError, match=match):
        build_corpus(tmp_path / "x", **{**TINY, **kwargs})
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("source,patch,package", [
    ("speech-real", "real_speech_files", "asterisk-core-sounds-en-g722"),
    ("music-real", "real_music_files", "asterisk-moh-opsound-g722"),
    ("speech-tts", "list_voices", "espeak-ng"),
])
def test_a_source_without_material_names_its_packages(tmp_path, monkeypatch, source, patch, package):
    monkeypatch.setattr(build_mod, patch, lambda *a, **k: [])
    with pytest.raises(MissingToolError, match=package):
        build_corpus(tmp_path / "x", **{**TINY, "sources": (source,)})
    assert not (tmp_path / "x").exists()


def test_foreign_nonempty_folder_is_refused(tmp_path):
    (tmp_path / "mine.txt").write_text("precious")
    with pytest.raises(CorpusBuildError, match="not empty"):
        build_corpus(tmp_path, **TINY)
    assert (tmp_path / "mine.txt").read_text() == "precious"


def test_split_fractions_renormalize_over_available_splits():
    f = build_mod._split_fractions(0.1, 0.1, {"train", "test"})
    assert f["valid"] == 0.0 and f["train"] == pytest.approx(0.8 / 0.9) and f["test"] == pytest.approx(0.1 / 0.9)
