"""``listen prepare``: stimuli through the API, anchors, alignment, secrets, error paths."""

import json
import os
import stat

import numpy as np
import pytest
import soundfile as sf

from neurocodec.cli import main
from neurocodec.errors import BitrateError, UnknownCodecError, UserError
from neurocodec.listen.plan import Plan
from neurocodec.listen.prepare import align_to, find_items, lowpass, parse_conditions, prepare_test


def band_energy(x, sr, lo, hi):
    spec = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(x.size, 1 / sr)
    return spec[(f >= lo) & (f < hi)].sum()


def test_test_folder_contents(tiny_test_template):
    plan = Plan.load(tiny_test_template)
    assert [c.id for c in plan.conditions] == ["reference", "pcm-256k", "mdct-16k", "anchor-3.5k", "anchor-7k"]
    assert {i.group for i in plan.items} == {"speech", "music"}
    assert len(plan.raters) == 4
    for item in plan.items:
        ref, sr = sf.read(tiny_test_template / plan.stimuli[item.id]["reference"]["file"], dtype="float32")
        assert sr == item.sample_rate == 16000 and ref.size == item.num_samples == 24000
        for cid, st in plan.stimuli[item.id].items():
            x, _ = sf.read(tiny_test_template / st["file"], dtype="float32")
            assert x.shape == ref.shape, cid  # every stimulus as long as the reference: switching keeps the position
        # the codecs' measured rate comes from the real .ncdc stream
        assert 15 < plan.stimuli[item.id]["mdct-16k"]["measured_kbps"] < 20
        pcm, _ = sf.read(tiny_test_template / plan.stimuli[item.id]["pcm-256k"]["file"], dtype="float32")
        assert np.max(np.abs(pcm - ref)) < 2e-4  # 16-bit PCM anchor of the codec list: the reference again
        lp35, _ = sf.read(tiny_test_template / plan.stimuli[item.id]["anchor-3.5k"]["file"], dtype="float32")
        lp7, _ = sf.read(tiny_test_template / plan.stimuli[item.id]["anchor-7k"]["file"], dtype="float32")
        if band_energy(ref, sr, 3700, 8000) > 1e-3 * band_energy(ref, sr, 0, 8000):
            assert band_energy(lp35, sr, 3700, 8000) < 1e-4 * band_energy(ref, sr, 3700, 8000)
        assert band_energy(lp7, sr, 0, 6800) == pytest.approx(band_energy(ref, sr, 0, 6800), rel=0.01)


def test_secrets_are_private_random_tokens(tiny_test_template):
    path = tiny_test_template / "secrets.json"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    sec = json.loads(path.read_text())
    tokens = [sec["admin"], *sec["raters"].values()]
    assert len(set(tokens)) == len(tokens) == 5
    assert all(len(t) >= 40 for t in tokens)  # 32 random bytes, url-safe base64
    assert sec["admin"] not in (tiny_test_template / "plan.json").read_text()


def test_lowpass_is_zero_phase():
    sr = 16000
    x = np.zeros((1, 4000), np.float32)
    x[0, 2000] = 1.0
    y = lowpass(x, sr, 3500)
    assert int(np.argmax(y[0])) == 2000  # no delay: anchors stay aligned with the reference
    assert lowpass(x, 8000, 7000) is not x and np.array_equal(lowpass(x, 8000, 7000), x)  # above Nyquist: unchanged


def test_align_removes_codec_delay():
    rng = np.random.default_rng(0)
    ref = rng.standard_normal((1, 8000)).astype(np.float32)
    late = np.concatenate([np.zeros((1, 37), np.float32), ref[:, :-37]], axis=1)
    out, delay = align_to(ref, late, 16000)
    assert delay == 37 and out.shape == ref.shape
    np.testing.assert_array_equal(out[:, :-37], ref[:, :-37])


def test_parse_conditions():
    cs = parse_conditions("mdct:16, pcm")
    assert [(c.id, c.codec, c.kbps) for c in cs] == [("mdct-16k", "mdct", 16.0), ("pcm-256k", "pcm", 256.0)]
    with pytest.raises(UnknownCodecError):
        parse_conditions("nosuchcodec:16")
    with pytest.raises(BitrateError):
        parse_conditions("mdct:500")
    with pytest.raises(UserError, match="invalid bitrate"):
        parse_conditions("mdct:fast")
    with pytest.raises(UserError, match="twice"):
        parse_conditions("mdct:16,mdct:16")
    with pytest.raises(UserError, match="no codec"):
        parse_conditions(" , ")


def test_items_and_groups(tmp_path, make_items):

    make_items(tmp_path / "d")
    rows = find_items(tmp_path / "d")
    assert [(k, g) for _, k, g in rows] == [("music/b.wav", "music"), ("speech/a.wav", "speech")]
    assert [g for *_, g in find_items(tmp_path / "d", group_by="item")] == ["b", "a"]
    assert [g for *_, g in find_items(tmp_path / "d", group_by="none")] == ["all", "all"]
    with pytest.raises(UserError, match="not found"):
        find_items(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no audio"):
        find_items(tmp_path / "empty")


def test_existing_folder_is_never_overwritten_and_failures_leave_nothing(tmp_path, tiny_test_template, make_items):

    items = find_items(make_items(tmp_path / "d"))
    with pytest.raises(UserError, match="not empty"):
        prepare_test(items, parse_conditions("pcm"), tiny_test_template)
    with pytest.raises(UserError, match="at most 12"):
        prepare_test(items, parse_conditions("pcm,mdct:8,mdct:9,mdct:10,mdct:11,mdct:12,mdct:13,mdct:14,mdct:15,mdct:16"),
                     tmp_path / "t")
    bad = tmp_path / "bad"
    bad.mkdir()
    sf.write(bad / "silent.wav", np.zeros(0, np.float32), 16000)
    with pytest.raises(UserError):
        prepare_test(find_items(bad), parse_conditions("pcm"), tmp_path / "t2")
    assert not (tmp_path / "t2").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".t2")]  # no temporary folder left


def test_cli_prepare_and_its_errors(tmp_path, capsys, make_items):

    make_items(tmp_path / "d", seconds=0.5)
    assert main(["listen", "prepare", "--codecs", "nope:16", "--items", str(tmp_path / "d"), "--out", str(tmp_path / "t")]) == 2
    assert "nope" in capsys.readouterr().err
    assert main(["listen", "prepare", "--codecs", "pcm", "--items", str(tmp_path / "d"), "--out", str(tmp_path / "t"),
                 "--raters", "0"]) == 2
    assert main(["listen", "prepare", "--codecs", "pcm", "--items", str(tmp_path / "d"), "--out", str(tmp_path / "t"),
                 "--raters", "3", "--max-seconds", "0.25", "--limit", "1", "-q"]) == 0
    plan = Plan.load(tmp_path / "t")
    assert len(plan.items) == 1 and plan.items[0].num_samples == 4000 and len(plan.raters) == 3
    assert main(["listen", "results", str(tmp_path / "t")]) == 2  # no ratings yet: one-line error
    assert "no ratings" in capsys.readouterr().err
