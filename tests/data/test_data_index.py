"""index_folder on LibriSpeech-, VCTK-, TIMIT-like and plain trees."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from neurocodec.data.index import FolderIndexError, index_folder, infer_speaker
from neurocodec.data.manifest import Manifest
from neurocodec.errors import UserError


def _write(path: Path, seconds: float = 0.1, sr: int = 16000, fmt: str | None = None):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.zeros(int(seconds * sr), dtype=np.float32), sr, format=fmt)


def _librispeech(root: Path, speakers=40):
    for s in range(speakers):
        spk = 100 + s
        for chap in (1000 + s, 2000 + s):
            for utt in range(2):
                _write(root / "train-clean-100" / str(spk) / str(chap) / f"{spk}-{chap}-{utt:04d}.flac",
                       seconds=0.05 * (1 + utt))
    return root


@pytest.mark.parametrize("rel,expected", [
    ("train-clean-100/103/1240/103-1240-0000.flac", ("libri:103", "en", "librispeech")),
    ("LibriTTS/train-clean-100/19/198/19_198_000000_000000.wav", ("libri:19", "en", "librispeech")),
    ("wav48/p225/p225_001.wav", ("vctk:p225", "en", "vctk")),
    ("wav48_silence_trimmed/p376/p376_295_mic2.flac", ("vctk:p376", "en", "vctk")),
    ("TIMIT/TRAIN/DR1/FCJF0/SA1.WAV", ("timit:FCJF0", "en", "timit")),
    ("my_corpus/alice/take1.wav", ("dir:my_corpus/alice", "", "folder")),
    ("loose.wav", ("file:loose.wav", "", "file")),
])
def test_speaker_inference_rules(rel, expected):
    assert infer_speaker(Path(rel)) == expected


def test_librispeech_tree_splits_by_speaker(tmp_path):
    root = _librispeech(tmp_path / "LibriSpeech")
    m = index_folder(root, valid=0.1, test=0.1)
    assert len(m) == 40 * 4
    assert m.leaks() == {}
    assert {len(m.groups(s)) for s in ("valid", "test")} == {4}
    assert len(m.groups("train")) == 32
    r = m.records[0]
    assert r.source == "user" and r.sample_rate == 16000 and r.language == "en"
    assert r.duration in (0.05, 0.1)
    assert Path(root / "manifest.jsonl").is_file()
    back = Manifest.load(root / "manifest.jsonl")
    assert all(back.abspath(x).is_file() for x in back)


def test_vctk_tree_and_external_manifest_location(tmp_path):
    root = tmp_path / "VCTK-Corpus"
    for spk in ("p225", "p226", "p227", "p228", "p229", "p230"):
        for i in range(1, 4):
            _write(root / "wav48" / spk / f"{spk}_{i:03d}.wav", sr=48000)
    out = tmp_path / "manifests" / "vctk.jsonl"
    m = index_folder(root, out=out, valid=0.2, test=0.2)
    assert {r.speaker for r in m} == {f"vctk:p22{i}" for i in range(5, 10)} | {"vctk:p230"}
    assert m.leaks() == {}
    assert all(r.path.startswith("../VCTK-Corpus/wav48/") for r in m)
    back = Manifest.load(out)
    assert all(back.abspath(r).is_file() and r.sample_rate == 48000 for r in back)


def test_split_is_seeded_and_split_by_file_mixes_speakers(tmp_path):
    root = _librispeech(tmp_path / "ls", speakers=30)
    a = index_folder(root, out=tmp_path / "a.jsonl", seed=0, valid=0.2, test=0.2)
    b = index_folder(root, out=tmp_path / "b.jsonl", seed=1, valid=0.2, test=0.2)
    assert a.groups("test") != b.groups("test")
    assert index_folder(root, out=tmp_path / "a2.jsonl", seed=0, valid=0.2, test=0.2).records == a.records
    f = index_folder(root, out=tmp_path / "f.jsonl", split_by="file", valid=0.3, test=0.3)
    assert f.leaks() != {}  # files of one speaker land in several splits


def test_unreadable_files_are_skipped(tmp_path):
    _write(tmp_path / "spk" / "a.wav")
    (tmp_path / "spk" / "broken.wav").write_bytes(b"RIFF nonsense")
    m = index_folder(tmp_path)
    assert [r.path for r in m] == ["spk/a.wav"]


def test_errors(tmp_path):
    with pytest.raises(FolderIndexError, match="not found"):
        index_folder(tmp_path / "missing")
    (tmp_path / "notes.txt").write_text("no audio here")
    with pytest.raises(FolderIndexError, match="no audio files"):
        index_folder(tmp_path)
    (tmp_path / "bad.wav").write_bytes(b"junk")
    with pytest.raises(FolderIndexError, match="could be read"):
        index_folder(tmp_path)
    _write(tmp_path / "good.wav")
    with pytest.raises(UserError, match="split-by"):
        index_folder(tmp_path, split_by="chapter")
    with pytest.raises(UserError):
        index_folder(tmp_path, valid=0.7, test=0.4)
