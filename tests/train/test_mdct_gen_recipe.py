"""``neurocodec train mdct-gen`` on the shared trainer (the GPU plan's path): an audio pack in,
the mdct conditioning computed once, checkpoints in RUN/checkpoints, ``neurocodec export`` out,
and weights the ``mdct-gen`` codec decodes with (also picked per rate)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from neurocodec.cli import main as cli_main
from neurocodec.codecs import mdct_gen
from neurocodec.codecs.mdct_gen import MdctGenCodec, MdctGenPianoCodec
from neurocodec.data.packed import PackedSplit, encode_pack
from neurocodec.train import samplernn as tr
from neurocodec.train.recipe import make_recipe

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--set", "model.net.rnn_width=8", "--set", "model.net.mlp_width=8", "--set", "model.net.cond_width=8",
        "--set", "model.crop_blocks=2", "--set", "train.batch_size=2", "--set", "train.val_every=1",
        "--set", "train.val_batches=1", "--set", "train.log_every=1"]


def _signal(n: int, f0: float, seed: int) -> np.ndarray:
    t = np.arange(n) / 16000
    x = 0.2 * np.sin(2 * np.pi * f0 * t) + 0.01 * np.random.default_rng(seed).standard_normal(n)
    return np.round(x * 32768).astype(np.int16)


def _pack(path: Path) -> Path:
    """A pack with two train files (speech-real 1 s, speech-tts 0.9 s), one music file that the
    speech recipe leaves out, and one valid file."""
    def split(files):
        audio = [_signal(n, f, i) for i, (n, f, _) in enumerate(files)]
        return PackedSplit(np.concatenate(audio), np.concatenate([[0], np.cumsum([a.size for a in audio])]),
                           [s for _, _, s in files])

    splits = {"train": split([(16000, 200, "speech-real"), (14400, 300, "speech-tts"), (16000, 440, "music-real")]),
              "valid": split([(9600, 250, "speech-tts")])}
    path.write_bytes(encode_pack({"sample_rate": 16000, "manifest": None}, splits))
    return path


def test_crops_pack_and_unpack_and_depend_on_seed_epoch_index_alone():
    cfg = tr.MdctGenConfig().net
    sigs = [_signal(16000, 200, 0).astype(np.float32) / 32768, _signal(4000, 300, 1).astype(np.float32) / 32768]
    cond = tr.condition_signals(sigs, 16.0, cfg)
    assert list(cond["blocks"]) == [50, 13]
    ds = tr.MdctGenCrops(cond, cfg, crop_blocks=3, seed=5)
    assert len(ds) == 63 // 3
    item = ds[4]
    assert item.shape == (1, tr.crop_length(cfg, 3)) and item.dtype == torch.float32
    assert torch.equal(item, ds[4])
    ds.set_epoch(1)
    assert not torch.equal(item, ds[4])
    x, xh, ev = tr.unpack_crops(torch.stack([item, item]), cfg)
    assert x.shape == (2, 160 + 960) and xh.shape == (2, 320 * 6) and ev.shape == (2, 6, 16)
    assert torch.equal(tr.pack_crop(x[0], xh[0], ev[0]), item[0])
    # the first block of a crop is where its targets start: the history before a file is zero
    ds.set_epoch(0)
    sampler = ds.sampler
    xa, xha, eva = sampler.crop(0, 0, 3)
    assert not xa[:160].any() and np.array_equal(xa[160:], sigs[0][:960])
    # on a GPU the split is held as tensors (to_device): the same crops come out
    on_device = tr.MdctGenCrops(cond, cfg, crop_blocks=3, seed=5)
    on_device.sampler.files = [tuple(torch.from_numpy(np.ascontiguousarray(a)) for a in f)
                               for f in on_device.sampler.files]
    assert all(torch.equal(on_device[i], ds[i]) for i in (0, 4, 20))
    with pytest.raises(ValueError, match="not a packed SampleRNN crop"):
        tr.unpack_crops(torch.zeros(1, 1, 1000), cfg)
    with pytest.raises(tr.RecipeError, match="lower model.crop_blocks"):
        tr.MdctGenCrops(cond, cfg, crop_blocks=60)


def test_recipes_and_settings():
    r = make_recipe("mdct-gen", ["model.net.rnn_width=32"], bitrate_kbps=8)
    assert r.model.bitrate_kbps == 8 and r.model.net.rnn_width == 32 and r.model.net.frame_sizes == (2, 2, 16, 160)
    assert r.train.lr == 2e-4 and r.train.grad_clip == 1.0
    p = make_recipe("mdct-gen-piano")
    assert p.model.kind == "piano" and p.model.net.frame_sizes == (8, 8, 64, 320) and p.model.net.num_logistics == 1
    with pytest.raises(tr.RecipeError, match="between 8 and 32"):
        make_recipe("mdct-gen", bitrate_kbps=48)


def test_train_from_a_pack_resume_export_and_decode(tmp_path, capsys):
    pack = _pack(tmp_path / "speech.ncpack")
    run = tmp_path / "run"
    rc = cli_main(["train", "mdct-gen", "--data", str(pack), "--out", str(run), "--bitrate", "16", "--steps", "2",
                   "--no-quality", "-q", "--set", "train.max_seconds=600", *TINY])
    assert rc == 0
    err = capsys.readouterr().err
    # the conditioning of the two speech files (not the music one) was computed once, on the clock
    assert "split 'train' of speech.ncpack (speech-real, speech-tts): 2 files, 2 s, mdct conditioning at 16 kbps" in err
    assert "train.max_seconds now" in err
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step_00000002.pt"]
    ck = torch.load(run / "checkpoints" / "step_00000002.pt", weights_only=False)
    assert 0 < ck["recipe"]["train"]["max_seconds"] < 600
    assert 4 < ck["metrics"]["val"]["val/nll"] < 12 and 4 < ck["metrics"]["train"]["loss/nll"] < 12
    assert cli_main(["train", "mdct-gen", "--data", str(pack), "--out", str(run), "--resume", "--steps", "3",
                     "--no-quality", "-q"]) == 0
    assert (run / "checkpoints" / "step_00000003.pt").exists()

    assert cli_main(["export", str(run), "--name", "mdct-gen-16k", "--dest", str(tmp_path / "w"), "--fp16",
                     "--allow-incomplete"]) == 0
    out = tmp_path / "w" / "mdct-gen-16k"
    from safetensors.torch import load_file

    tensors = load_file(str(out / "model.safetensors"))
    assert {t.dtype for t in tensors.values()} == {torch.float16}
    assert json.loads((out / "config.json").read_text())["net"]["rnn_width"] == 8
    codec = MdctGenCodec(weights_path=out / "model.safetensors")
    model = codec.load_model()
    state = torch.load(run / "checkpoints" / "step_00000003.pt", weights_only=False)["model"]
    assert all(torch.allclose(model.state_dict()[k], v, atol=1e-3) for k, v in state.items())
    x = (_signal(3200, 220, 9).astype(np.float32) / 32768)[None]
    y = codec.decompress(codec.compress(x, 16).chunks, 1, 3200, 16)
    assert y.shape == (1, 3200) and np.isfinite(y).all()

    # continuing from exported (or shipped) weights: --init copies every tensor
    run2 = tmp_path / "run2"
    assert cli_main(["train", "mdct-gen", "--data", str(pack), "--out", str(run2), "--steps", "1", "--no-quality",
                     "-q", "--init", str(out), *TINY]) == 0
    assert "initialised 44 tensors" in capsys.readouterr().err


def test_piano_needs_a_manifest(tmp_path, capsys):
    pack = _pack(tmp_path / "speech.ncpack")
    rc = cli_main(["train", "mdct-gen-piano", "--data", str(pack), "--out", str(tmp_path / "run"), "--steps", "1",
                   "--no-quality", "-q"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "piano renderings" in err and "Traceback" not in err


def test_piano_trains_on_the_piano_renderings_of_a_manifest(tmp_path, capsys):
    import soundfile as sf

    rows = []
    for i, (split, source, origin) in enumerate([("train", "music-rendered", "midi style=piano"),
                                                 ("train", "music-rendered", "midi style=ensemble"),
                                                 ("train", "speech-real", ""), ("valid", "music-rendered", "midi style=piano")]):
        sf.write(tmp_path / f"{i}.flac", _signal(12800, 110 * (i + 1), i), 16000, subtype="PCM_16")
        rows.append({"path": f"{i}.flac", "source": source, "split": split, "origin": origin})
    (tmp_path / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert cli_main(["train", "mdct-gen-piano", "--data", str(tmp_path / "manifest.jsonl"), "--out",
                     str(tmp_path / "run"), "--steps", "1", "--no-quality", "-q", *TINY]) == 0
    err = capsys.readouterr().err
    assert "split 'train' of manifest.jsonl (piano): 1 files" in err and "split 'valid' of manifest.jsonl (piano): 1 files" in err
    ck = torch.load(tmp_path / "run" / "checkpoints" / "step_00000001.pt", weights_only=False)
    assert ck["recipe"]["model"]["net"]["frame_sizes"] == [8, 8, 64, 320] and "val/nll" in ck["metrics"]["val"]


def test_codec_picks_the_model_trained_nearest_to_the_stream_rate(tmp_path, monkeypatch):
    torch.manual_seed(0)
    for name, width in (("mdct-gen-8k", 8), ("mdct-gen-16k", 12), ("mdct-gen-piano-16k", 16)):
        cfg = tr.MdctGenConfig(net=tr.SampleRnnConfig.speech(rnn_width=width, mlp_width=8, cond_width=8))
        d = tmp_path / name
        d.mkdir()
        from safetensors.torch import save_file

        save_file({k: v.half() for k, v in tr.MdctGenTrainable(cfg).state_dict().items()}, str(d / "model.safetensors"))
        (d / "config.json").write_text(json.dumps({"net": cfg.net.to_dict()}))
    monkeypatch.setattr(mdct_gen, "WEIGHTS_DIR", tmp_path)
    codec = MdctGenCodec()
    assert sorted(codec.rate_weights()) == [8.0, 16.0]
    assert [codec.weights_for(k).parent.name for k in (8, 11, 12, 16, 32)] == \
        ["mdct-gen-8k", "mdct-gen-8k", "mdct-gen-16k", "mdct-gen-16k", "mdct-gen-16k"]
    assert codec.weights_for(None).parent.name == "mdct-gen-16k"
    x = (_signal(1600, 220, 3).astype(np.float32) / 32768)[None]
    codec.decompress(codec.compress(x, 8).chunks, 1, 1600, 8)
    assert codec.load_model(8).config.rnn_width == 8 and codec.load_model(16).config.rnn_width == 12
    assert MdctGenPianoCodec().weights_for(8).parent.name == "mdct-gen-piano-16k"
    explicit = MdctGenCodec(weights_path=tmp_path / "mdct-gen-16k" / "model.safetensors")
    assert explicit.weights_for(8).parent.name == "mdct-gen-16k"


def test_training_needs_no_soundfile_soxr_or_constriction(tmp_path):
    """What the GPU machine lacks is made unimportable: the pack is read, the mdct conditioning
    computed and a step trained without them."""
    pack = _pack(tmp_path / "speech.ncpack")
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "import sys\nfor _m in ('soundfile', 'soxr', 'constriction', 'pesq', 'pystoi'):\n    sys.modules[_m] = None\n")
    code = ("import sys; sys.path.insert(0, %r); import gpu_train; gpu_train.install_placeholders(); "
            "from neurocodec.cli import main; sys.exit(main(sys.argv[1:]))" % str(ROOT / "scripts"))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), str(ROOT / "src")]))
    cmd = [sys.executable, "-c", code, "train", "mdct-gen", "--data", str(pack), "--out", str(tmp_path / "run"),
           "--bitrate", "32", "--steps", "1", "--no-quality", "-q", "--set", "train.amp=bf16", *TINY]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "mdct conditioning at 32 kbps" in res.stderr
    assert (tmp_path / "run" / "checkpoints" / "step_00000001.pt").exists()
