"""SampleRNN training for mdct-gen: conditioning precompute, budgeted resumable fit, fp16 export."""

from __future__ import annotations

import json

import numpy as np
import soundfile as sf
import torch

from neurocodec.codecs.mdct_gen import MdctGenCodec
from neurocodec.train import samplernn as tr


def _manifest(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for i, (src, split, origin) in enumerate([("speech-real", "train", ""), ("speech-tts", "train", ""),
                                              ("speech-tts", "valid", ""), ("music-rendered", "train", "x style=piano"),
                                              ("music-rendered", "train", "x style=ensemble"), ("mixture", "train", "")]):
        t = np.arange(16000 + 123 * i) / 16000
        x = 0.1 * np.sin(2 * np.pi * (150 + 50 * i) * t) + 0.01 * rng.standard_normal(t.size)
        sf.write(tmp_path / f"{i}.flac", x, 16000, subtype="PCM_16")
        rows.append({"path": f"{i}.flac", "source": src, "split": split, "origin": origin})
    m = tmp_path / "manifest.jsonl"
    m.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return m


def test_select_prepare_fit_resume_export(tmp_path):
    m = _manifest(tmp_path)
    assert [r["path"] for r in tr.select_items(m, "speech", "train")] == ["0.flac", "1.flac"]
    assert [r["path"] for r in tr.select_items(m, "piano", "train")] == ["3.flac"]
    info = tr.prepare(m, "speech", "train", tmp_path / "tr.npz")
    tr.prepare(m, "speech", "valid", tmp_path / "va.npz")
    assert info["files"] == 2 and info["kbps"] == 16.0
    d = np.load(tmp_path / "tr.npz")
    assert list(d["blocks"]) == [50, 51]                  # ceil(16000/320), ceil(16123/320)
    assert d["x"].dtype == np.int16 and d["xhat"].shape == ((50 + 3 + 51 + 3) * 320,)
    small = {"rnn_width": 8, "mlp_width": 8, "cond_width": 8}
    cfg = tr.FitConfig(kind="speech", batch=2, crop_blocks=2, max_steps=3, eval_every=2, valid_batches=1,
                       model=small)
    run = tmp_path / "run"
    s1 = tr.fit(cfg, tmp_path / "tr.npz", tmp_path / "va.npz", run, log=lambda s: None)
    assert s1["steps"] == 3 and (run / "last.pt").exists() and (run / "best.pt").exists()
    cfg.max_steps = 5
    s2 = tr.fit(cfg, tmp_path / "tr.npz", tmp_path / "va.npz", run, log=lambda s: None)
    assert s2["steps"] == 5                                # resumed, not restarted
    ck = torch.load(run / "last.pt", weights_only=False)
    assert [h["step"] for h in ck["state"]["history"]] == [2, 4]
    cfg.max_steps, cfg.max_seconds = 100, 0.0              # the wall-clock budget stops it at once
    assert tr.fit(cfg, tmp_path / "tr.npz", tmp_path / "va.npz", run, log=lambda s: None)["steps"] == 5
    out = tr.export(run, tmp_path / "w" / "mdct-gen-16k", "mdct-gen-16k", valid_npz=tmp_path / "va.npz")
    card = (out / "MODEL_CARD.md").read_text()
    assert "5 steps" in card and "step 4" in card           # trained 5 steps, best checkpoint at step 4
    meta = json.loads((out / "config.json").read_text())
    assert abs(meta["valid_nll_fp16"] - meta["valid_nll_fp32"]) < 0.01 and "fp16 storage" in card
    codec = MdctGenCodec(weights_path=out / "model.safetensors")
    x = sf.read(tmp_path / "0.flac", dtype="float32")[0][None, :3200]
    y = codec.decompress(codec.compress(x, 16).chunks, 1, 3200, 16)
    assert y.shape == (1, 3200) and np.isfinite(y).all()
