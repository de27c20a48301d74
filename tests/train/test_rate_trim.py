"""The export-time rate trim: the quantizer step ``code_scale`` and the search that sets it."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from neurocodec.codecs.cascade import CodingModule
from neurocodec.codecs.cmrl import CmrlCodec, CmrlConfig
from neurocodec.data.manifest import Manifest, SegmentRecord
from neurocodec.errors import UserError
from neurocodec.nn.cmrl_blocks import AutoencoderConfig
from neurocodec.train.export import manifest_records
from neurocodec.train.rate_trim import trim_code_scale

TINY = AutoencoderConfig(channels=8, bottleneck_channels=4)


def _signals(n: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    t = np.arange(8000) / 16000
    out = []
    for i in range(n):
        x = 0.3 * np.sin(2 * np.pi * (120 + 60 * i) * t) + 0.05 * rng.standard_normal(t.size)
        out.append(x[None, :].astype(np.float32))
    return out


def _model(modules: int = 1) -> CmrlCodec:
    torch.manual_seed(0)
    return CmrlCodec(replace(CmrlConfig(), modules=(TINY,) * modules)).eval()


def test_code_scale_quantizes_on_stretched_centroids():
    torch.manual_seed(0)
    m = CodingModule(TINY, 32, differential=False).eval()
    frames = torch.randn(3, 512) * 0.3
    code = m.code(frames)
    idx1 = m.encode_indices(frames)
    m.code_scale = 2.0
    idx2 = m.encode_indices(frames)
    c = m.quantizer.centroids.detach()
    assert torch.equal(idx2, torch.argmin(((code / 2.0).unsqueeze(-1) - c).abs(), -1))
    assert len(torch.unique(idx2)) <= len(torch.unique(idx1))  # a coarser grid
    # the decoder receives 2 x the centroid, in forward and in decode_indices alike
    out = m(frames, alpha=300.0, hard=True)
    assert torch.equal(out.quant.indices, idx2)
    assert torch.allclose(out.recon, m.decode_indices(idx2), atol=1e-6)


def test_set_code_scale_changes_the_header_hash_and_survives_a_checkpoint(tmp_path):
    model = _model(2)
    h1 = model.config_hash()
    assert "code_scale" not in model.config_dict()  # hashes of untrimmed configs did not change
    model.set_code_scale(1.25)
    assert model.config_hash() != h1 and model.coding_modules[0].code_scale == 1.25
    assert model.coding_modules[1].code_scale == 1.0  # later modules keep their trained grid
    model.save_pretrained(tmp_path / "m.safetensors")
    back = CmrlCodec.from_pretrained(tmp_path / "m.safetensors")
    assert back.config.code_scale == 1.25 and back.coding_modules[0].code_scale == 1.25
    assert back.coding_modules[1].code_scale == 1.0
    with pytest.raises(ValueError, match="code_scale"):
        replace(CmrlConfig(), code_scale=0.0)


def test_trim_reaches_the_target_rate_on_real_files():
    model, fit, cal = _model(), _signals(3, 0), _signals(2, 1)
    model.fit_entropy_coder(fit)
    from neurocodec.train.export import measure_file_bitrate

    base = measure_file_bitrate(model, cal, 15.85)["kbps"]
    target = 0.85 * base
    trim = trim_code_scale(model, fit, cal, target, tolerance=0.01)
    assert trim.statistic == "total" and trim.code_scale > 1.0  # fewer bits: a coarser step
    assert trim.kbps == pytest.approx(target, rel=0.01)
    assert measure_file_bitrate(model, cal, 15.85)["kbps"] == pytest.approx(trim.kbps)  # model left there
    assert trim.trials[0] == (1.0, pytest.approx(base)) and trim.trials[-1][0] == trim.code_scale
    assert "entropy_fit" not in trim.to_dict() and trim.entropy_fit["seconds"] == pytest.approx(1.5)


def test_trim_measures_without_the_file_rate_control_and_restores_it():
    """With the file-level rate control on, every file would land on the target whatever the
    step: the trim measures with it off (the same search as without it) and switches it back."""
    fit, cal = _signals(3, 0), _signals(2, 1)
    plain, controlled = _model(), _model()
    plain.fit_entropy_coder(fit)
    controlled.fit_entropy_coder(fit)
    controlled.set_file_rate_control(True)
    from neurocodec.train.export import measure_file_bitrate

    target = 0.85 * measure_file_bitrate(plain, cal, 15.85)["kbps"]
    a = trim_code_scale(plain, fit, cal, target, tolerance=0.01)
    b = trim_code_scale(controlled, fit, cal, target, tolerance=0.01)
    assert a.trials == b.trials and a.code_scale == b.code_scale
    assert controlled.config.file_rate_control and not plain.config.file_rate_control
    assert not a.with_rate_control and not b.with_rate_control
    # with_rate_control: the files are measured with the control on (its first trial is what
    # the controlled codec writes at the current step, not what the plain one writes)
    g = controlled.config.code_scale
    on = measure_file_bitrate(controlled, cal, 15.85)["kbps"]
    controlled.set_file_rate_control(False)
    off = measure_file_bitrate(controlled, cal, 15.85)["kbps"]
    controlled.set_file_rate_control(True)
    c = trim_code_scale(controlled, fit, cal, target, tolerance=0.01, with_rate_control=True)
    assert c.with_rate_control and controlled.config.file_rate_control
    assert c.trials[0] == (g, on) and on != off


def test_file_bitrate_statistics_and_the_per_file_trim():
    """Files of unequal length: the mean of per-file rates weighs the short file's header more
    than total bytes / total seconds does; the "files" trim lands the mean of files."""
    from neurocodec.api import Codec
    from neurocodec.train.export import measure_file_bitrate

    model, fit = _model(), _signals(3, 0)
    model.fit_entropy_coder(fit)
    cal = [_signals(1, 1)[0][:, :1600], np.tile(_signals(1, 2)[0], 4)]  # 0.1 s and 2 s
    sizes = [len(Codec(model).compress(x, 16000, 15.85)) for x in cal]
    got = measure_file_bitrate(model, cal, 15.85)
    assert got["files"] == 2 and got["seconds"] == pytest.approx(2.1)
    assert got["kbps"] == pytest.approx(8 * sum(sizes) / 2.1 / 1000)
    assert got["mean_file_kbps"] == pytest.approx((8 * sizes[0] / 0.1 + 8 * sizes[1] / 2.0) / 2 / 1000)
    assert got["mean_file_kbps"] > 1.2 * got["kbps"]
    target = 0.9 * got["mean_file_kbps"]
    trim = trim_code_scale(model, fit, cal, target, tolerance=0.01, statistic="files")
    assert trim.statistic == "files" and trim.to_dict()["statistic"] == "files"
    assert trim.kbps == pytest.approx(target, rel=0.01)
    assert measure_file_bitrate(model, cal, 15.85)["mean_file_kbps"] == pytest.approx(trim.kbps)


def test_trim_errors():
    with pytest.raises(UserError, match="no code_scale"):
        trim_code_scale(object(), _signals(1, 0), _signals(1, 1), 10.0)
    with pytest.raises(UserError, match="calibration audio"):
        trim_code_scale(_model(), _signals(1, 0), [], 10.0)
    with pytest.raises(UserError, match="positive target"):
        trim_code_scale(_model(), _signals(1, 0), _signals(1, 1), 0.0)
    with pytest.raises(UserError, match="unknown rate statistic"):
        trim_code_scale(_model(), _signals(1, 0), _signals(1, 1), 10.0, statistic="median")


def test_manifest_records_interleave_sources(tmp_path):
    recs = [SegmentRecord(f"{s}{i}.flac", 1.0, 16000, s, split="train") for s in ("a", "b") for i in range(3)]
    recs.append(SegmentRecord("c0.flac", 1.0, 16000, "c", split="train"))
    Manifest(recs, tmp_path).save(tmp_path / "m.jsonl")
    _, plain = manifest_records(tmp_path / "m.jsonl", "train", ())
    _, mixed = manifest_records(tmp_path / "m.jsonl", "train", (), interleave=True)
    assert [r.path for r in plain] == ["a0.flac", "a1.flac", "a2.flac", "b0.flac", "b1.flac", "b2.flac", "c0.flac"]
    assert [r.path for r in mixed] == ["a0.flac", "b0.flac", "c0.flac", "a1.flac", "b1.flac", "a2.flac", "b2.flac"]
