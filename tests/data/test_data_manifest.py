"""Manifest I/O, filtering, leak detection and summaries."""

from __future__ import annotations

import pytest

from neurocodec.data.manifest import Manifest, ManifestError, SegmentRecord


def _rec(path, split, source="speech-tts", speaker="s1", piece="", duration=2.0):
    return SegmentRecord(path=path, duration=duration, sample_rate=16000, source=source, speaker=speaker,
                         piece=piece, language="en" if speaker else "", split=split)


def _manifest(tmp_path):
    return Manifest([
        _rec("a.flac", "train", speaker="s1"),
        _rec("b.flac", "train", speaker="s2", duration=3.0),
        _rec("c.flac", "valid", speaker="s3"),
        _rec("d.flac", "test", source="music-rendered", speaker="", piece="p1", duration=10.0),
    ], tmp_path)


def test_save_load_round_trip(tmp_path):
    m = _manifest(tmp_path)
    path = m.save(tmp_path / "manifest.jsonl")
    back = Manifest.load(path)
    assert back.records == m.records
    assert back.root == tmp_path.resolve()
    assert Manifest.load(tmp_path).records == m.records  # a folder means its manifest.jsonl
    assert back.abspath(back.records[0]) == tmp_path.resolve() / "a.flac"


def test_filter_and_duration(tmp_path):
    m = _manifest(tmp_path)
    assert [r.path for r in m.filter(split="train")] == ["a.flac", "b.flac"]
    assert [r.path for r in m.filter(source="music-rendered")] == ["d.flac"]
    assert len(m.filter(split=["valid", "test"], source=["speech-tts"])) == 1
    assert m.filter(split="train").duration == pytest.approx(5.0)
    with pytest.raises(ManifestError):
        m.filter(split="dev")


def test_leaks_are_reported(tmp_path):
    m = _manifest(tmp_path)
    assert m.leaks() == {}
    m.records.append(_rec("e.flac", "test", speaker="s1"))
    assert m.leaks() == {"speaker:s1": ["test", "train"]}


def test_summary_counts(tmp_path):
    s = {x.split: x for x in _manifest(tmp_path).summary()}
    assert s["train"].segments == 2 and s["train"].speakers == 2 and s["train"].pieces == 0
    assert s["train"].hours == pytest.approx(5.0 / 3600)
    assert s["test"].hours_by_source == {"music-rendered": pytest.approx(10.0 / 3600)}
    assert "train:" in _manifest(tmp_path).describe()


def test_load_errors(tmp_path):
    with pytest.raises(ManifestError, match="not found"):
        Manifest.load(tmp_path / "nope.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"path": "a.flac"}\n')
    with pytest.raises(ManifestError, match="lacks"):
        Manifest.load(bad)
    bad.write_text("not json\n")
    with pytest.raises(ManifestError, match="bad.jsonl:1"):
        Manifest.load(bad)
