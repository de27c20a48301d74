"""The GPU plan (scripts/gpu_train.py, scripts/gpu_import.py, scripts/gpu_plan/*.yaml) and the
audio pack it trains on (neurocodec.data.packed).

The CPU dry run trains two real jobs of the plan for a few seconds each, with soundfile, soxr,
constriction, pesq, pystoi and every other module that the GPU machine's image lacks made
unimportable (a sitecustomize on PYTHONPATH), then imports what it packed and exports one job into loadable weights:
a typo in the plan, a missing init file or an import of a missing module fails here first."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from neurocodec.data.manifest import Manifest, SegmentRecord
from neurocodec.data.packed import PackError, PackedSegments, decode_pack, encode_pack, PackedSplit, read_pack, write_pack

ROOT = Path(__file__).resolve().parents[2]
BLOCKED = ("soundfile", "soxr", "constriction", "pesq", "pystoi")
#: the Python distributions of the GPU machine's image, as /work/.library/device/KINDS.md listed
#: them on 2026-11-17 (it lacks the five above); the dry run blocks every module installed here
#: that none of these provides
DEVICE_DISTRIBUTIONS = """
    absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs botorch
    build certifi charset-normalizer chex click cloudpickle cmake colorama contourpy coverage
    cuda-bindings cuda-core cuda-pathfinder cuda-toolkit cupy-cuda13x cycler cython diffrax e3nn
    einops equinox etils execnet filelock flatbuffers flax fonttools formulaic frozenlist fsspec
    gpytorch grpcio h11 h5py hf-xet httpcore httpx huggingface-hub humanize hypothesis idna imageio
    iniconfig interface-meta jax jax-cuda13-pjrt jax-cuda13-plugin jaxlib jaxtyping jinja2 joblib
    kiwisolver lazy-loader lightning lightning-utilities linear-operator lineax llvmlite lxml
    markdown markdown-it-py markupsafe matplotlib mdurl meson ml-dtypes mpi4py mpmath msgpack
    multidict multipledispatch mypy-extensions nanobind narwhals networkx ninja numba numba-cuda
    numpy numpyro nvidia-cublas nvidia-cuda-cupti nvidia-cuda-nvrtc nvidia-cuda-runtime
    nvidia-cudnn-cu13 nvidia-cufft nvidia-cufile nvidia-curand nvidia-cusolver nvidia-cusparse
    nvidia-cusparselt-cu13 nvidia-ml-py nvidia-nccl-cu13 nvidia-nvjitlink nvidia-nvshmem-cu13
    nvidia-nvtx onnx onnx-ir onnxruntime onnxscript opencv-python-headless optax opt-einsum
    opt-einsum-fx optimistix orbax-checkpoint packaging pandas pathspec patsy peft pillow pip pluggy
    portalocker prometheus-client propcache protobuf psutil pyarrow pybind11 py-cpuinfo pygments
    pyparsing pyproject-hooks pyre-extensions pytest pytest-benchmark pytest-cov pytest-mock
    pytest-timeout pytest-xdist python-dateutil pytorch-lightning pyyaml regex requests rich
    sacrebleu safetensors scikit-build-core scikit-image scikit-learn scipy seaborn sentencepiece
    sentence-transformers setuptools shellingham simplejson six sortedcontainers statsmodels sympy
    tabulate tensorboard tensorboard-data-server tensorstore threadpoolctl tifffile tiktoken timm
    tokenizers toolz torch torchaudio torchdiffeq torch-geometric torchmetrics torchvision tqdm
    transformers treescope triton typer typing-extensions typing-inspect urllib3 uvloop
    wadler-lindig werkzeug wheel wrapt xarray xxhash yarl zipp
""".split()


def _not_on_the_device() -> list[str]:
    """Top-level modules installed here whose distribution the GPU machine does not have."""
    import re
    from importlib.metadata import packages_distributions

    norm = lambda name: re.sub(r"[-_.]+", "-", name.lower())  # noqa: E731
    there = {norm(d) for d in DEVICE_DISTRIBUTIONS}
    mods = {m for m, dists in packages_distributions().items() if not any(norm(d) in there for d in dists)}
    return sorted((mods | set(BLOCKED)) - {"neurocodec"})


def _script(name: str):
    spec = importlib.util.spec_from_file_location(f"_{name}", ROOT / "scripts" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def gpu_train():
    return _script("gpu_train")


@pytest.fixture
def corpus(tmp_path):
    """A small speech-like corpus: train f0 (speech-real, 2 s), f1 (speech-tts, 1.5 s), f2
    (music-real, 1 s: the speech pack leaves it out), f4 (speech-real, 0.1 s); valid f3
    (speech-real, 1.25 s)."""
    rng = np.random.default_rng(0)
    recs = []
    for i, (split, source, sec) in enumerate([("train", "speech-real", 2.0), ("train", "speech-tts", 1.5),
                                              ("train", "music-real", 1.0), ("valid", "speech-real", 1.25),
                                              ("train", "speech-real", 0.1)]):
        n = int(sec * 16000)
        t = np.arange(n) / 16000
        f0 = 110 + 30 * i
        x = sum(0.3 / k * np.sin(2 * np.pi * k * f0 * t) for k in range(1, 6)) * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t))
        x = (x + 0.02 * rng.standard_normal(n)).astype(np.float32)
        sf.write(tmp_path / f"f{i}.flac", x, 16000, subtype="PCM_16")
        recs.append(SegmentRecord(f"f{i}.flac", sec, 16000, source, speaker=f"s{i}", split=split))
    Manifest(recs, tmp_path).save(tmp_path / "manifest.jsonl")
    return tmp_path / "manifest.jsonl"


# -- the pack --------------------------------------------------------------------------------------

def test_pack_is_lossless_and_keeps_splits_and_sources(tmp_path, corpus):
    info = write_pack(corpus, tmp_path / "a.ncpack", sources=["speech-real", "speech-tts"])
    pack = read_pack(tmp_path / "a.ncpack")
    train = pack.splits["train"]
    assert train.sources == ["speech-real", "speech-tts", "speech-real"] and pack.splits["valid"].num_files == 1
    x0, _ = sf.read(corpus.parent / "f0.flac", dtype="int16")
    np.testing.assert_array_equal(train.audio[:x0.size], x0)  # 16-bit files come back bit for bit
    assert train.offsets.tolist() == [0, 32000, 56000, 57600]
    assert info["stats"]["train"]["seconds_by_source"] == {"speech-real": 2.1, "speech-tts": 1.5}
    assert pack.header["manifest"] == str(corpus.resolve()) and len(pack.header["manifest_sha256"]) == 64
    size = (tmp_path / "a.ncpack").stat().st_size
    assert info["bytes"] == size < info["stats"]["train"]["int16_bytes"] + info["stats"]["valid"]["int16_bytes"]
    # extreme values and wrap-around of the first differences survive
    edge = np.array([-32768, 32767, -32768, 0, 32767, 32767, -1], dtype=np.int16)
    back = decode_pack(encode_pack({"sample_rate": 8000}, {"x": PackedSplit(edge, np.array([0, 7]), ["a"])}))
    np.testing.assert_array_equal(back.splits["x"].audio, edge)


def test_packed_segments_crop_rule(tmp_path, corpus):
    write_pack(corpus, tmp_path / "a.ncpack", sources=None)
    ds = PackedSegments(tmp_path / "a.ncpack", "train", 4000, seed=3, sources=["speech-real"])
    assert len(ds) == int(np.ceil((32000 + 1600) / 4000)) and ds.sample_rate == 16000
    a = torch.stack([ds[i] for i in range(len(ds))])
    assert a.shape == (len(ds), 1, 4000) and a.dtype == torch.float32
    assert torch.equal(a[2], ds[2])  # crop i depends on (seed, epoch, i) alone
    ds.set_epoch(1)
    assert not torch.equal(a[2], ds[2])
    # a crop of the 0.1 s file is that file, zero-padded
    short = [(e, i) for e in range(40) for i in range(len(ds)) if ds.set_epoch(e) or ds.span(i)[1] == 1600]
    assert short  # the 0.1 s file is drawn with probability 1600 / 33600 per crop
    ds.set_epoch(short[0][0])
    x4, _ = sf.read(corpus.parent / "f4.flac", dtype="float32")
    np.testing.assert_allclose(ds[short[0][1]][0, :1600].numpy(), x4, atol=1e-7)
    assert torch.all(ds[short[0][1]][0, 1600:] == 0)
    ds.set_epoch(0)
    # values match the file at the crop's position
    x0, _ = sf.read(corpus.parent / "f0.flac", dtype="float32")
    start, valid = ds.span(0)
    if valid == 4000 and start < 32000:
        np.testing.assert_allclose(ds[0][0].numpy(), x0[start:start + 4000], atol=1e-7)
    # resampled on load when another rate is asked for
    up = PackedSegments(tmp_path / "a.ncpack", "valid", 800, sample_rate=24000)
    assert up.seconds == pytest.approx(1.25, abs=1e-3)
    with pytest.raises(PackError, match="no split 'test'"):
        PackedSegments(tmp_path / "a.ncpack", "test", 800)
    with pytest.raises(PackError, match="no audio"):
        PackedSegments(tmp_path / "a.ncpack", "valid", 800, sources=["music-real"])
    (tmp_path / "bad.ncpack").write_bytes(b"not xz")
    with pytest.raises(PackError, match="not a readable pack"):
        read_pack(tmp_path / "bad.ncpack")


# -- the plan ---------------------------------------------------------------------------------------

def test_every_plan_job_builds_and_its_weights_fit_what_comes_back(gpu_train):
    jobs = gpu_train.load_plan()
    names = {j.name for j in jobs}
    assert {"cq-9k", "cq-16k", "cq-20k", "cq-24k", "cmrl-8.85k", "cmrl-15.85k", "cmrl-19.85k", "cmrl-23.85k"} <= names
    sizes = gpu_train.check_jobs(jobs, [])  # recipes, overrides, init weights and export arguments
    bins, dtype = gpu_train.assign_files(sizes)
    assert dtype == "float32" and len(bins) <= gpu_train.MAX_PACK_FILES
    assert sorted(n for b in bins for n in b) == sorted(names)


def test_plan_errors_are_caught_before_training(tmp_path, gpu_train):
    plan = tmp_path / "plan"
    plan.mkdir()
    (plan / "x.yaml").write_text("jobs:\n  - {name: cq-16k, recipe: cq, bitrate: 16, set: [model.no_such=1]}\n")
    with pytest.raises(gpu_train.PlanError, match="job cq-16k: unknown setting 'model.no_such'"):
        gpu_train.check_jobs(gpu_train.load_plan(plan), [])
    (plan / "x.yaml").write_text("jobs:\n  - {name: cq-16k, recipe: cq, bitrate: 16, init: nowhere/w}\n")
    with pytest.raises(gpu_train.PlanError, match="init weights not found"):
        gpu_train.check_jobs(gpu_train.load_plan(plan), [])
    (plan / "x.yaml").write_text("jobs:\n  - {name: cq-16k, recipe: cq, bitrate: 16, export: [--no-such-flag]}\n")
    with pytest.raises(gpu_train.PlanError, match="export arguments"):
        gpu_train.check_jobs(gpu_train.load_plan(plan), [])
    (plan / "y.yaml").write_text("jobs:\n  - {name: cq-16k, recipe: cq}\n")
    with pytest.raises(gpu_train.PlanError, match="used twice"):
        gpu_train.load_plan(plan)
    with pytest.raises(gpu_train.PlanError, match="--only"):
        (plan / "y.yaml").unlink()
        gpu_train.load_plan(plan, ["zz"])


def test_pack_files_respect_the_limits(gpu_train):
    mib = 2**20
    bins, dtype = gpu_train.assign_files({"a": 10 * mib, "b": 5 * mib, "c": 5 * mib, "d": 3 * mib})
    assert dtype == "float32" and bins == [["a", "b"], ["c", "d"]]  # first fit, largest first
    bins, dtype = gpu_train.assign_files({f"j{i}": 14 * mib for i in range(7)})  # 98 MiB: half in float16
    assert dtype == "float16" and len(bins) == 4
    with pytest.raises(gpu_train.PlanError, match="do not fit"):
        gpu_train.assign_files({f"j{i}": 20 * mib for i in range(7)})


def test_optional_modules_become_placeholders(gpu_train, monkeypatch):
    monkeypatch.setitem(sys.modules, "soxr", None)
    assert gpu_train.install_placeholders(("soxr", "json")) == ["soxr"]
    import soxr

    with pytest.raises(ImportError, match="soxr is not installed"):
        soxr.resample


# -- the CPU dry run ----------------------------------------------------------------------------------

def test_cpu_dry_run_without_optional_modules_packs_and_exports(tmp_path, corpus):
    pack = tmp_path / "speech.ncpack"
    write_pack(corpus, pack, sources=["speech-real", "speech-tts"])
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "import sys\nfor _m in %r:\n    sys.modules[_m] = None  # not installed on the GPU machine\n"
        % (_not_on_the_device(),))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), str(ROOT / "src")]))
    out, work = tmp_path / "out", tmp_path / "work"
    cmd = [sys.executable, str(ROOT / "scripts" / "gpu_train.py"), "--device", "cpu", "--seconds", "300",
           "--job-seconds", "2", "--pack-every", "3", "--only", "cq-16k,cmrl-15.85k", "--data", str(pack),
           "--out", str(out), "--work", str(work), "--set", "train.batch_size=2", "--set", "train.val_every=1",
           "--set", "train.val_segment_samples=4096"]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=280, cwd=tmp_path)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "placeholders for ['soundfile', 'soxr', 'constriction']" in res.stdout
    assert sorted(p.name for p in out.iterdir()) == ["gpu_train.log", "pack-1.safetensors", "summary.json"]
    summary = json.loads((out / "summary.json").read_text())
    for name in ("cq-16k", "cmrl-15.85k"):
        job = summary["jobs"][name]
        assert job["returncode"] == 0 and job["step"] >= 1
        assert "val/metrics/snr_db" in job["metrics"]["val"]  # the cheap validation metric ran
        log = (work / "logs" / f"{name}.log").read_text()
        assert "train.max_seconds=" in log and "initialised" in log
    # the recipe of the packed job is the plan's, with the clock settings added
    recipe = json.loads((work / "runs" / "cq-16k" / "recipe.json").read_text())
    assert recipe["train"]["amp"] == "bf16" and recipe["train"]["phases"] == ["finetune"]
    assert recipe["model"]["training"]["rate_margin"] == 1.074 and 0 < recipe["train"]["max_seconds"] <= 2

    # import: run folders whose weights are those of the jobs' last checkpoints; export one
    gpu_import = _script("gpu_import")
    dest = tmp_path / "weights"
    rc = gpu_import.main([str(out), "--runs", str(tmp_path / "runs"), "--export", "--only", "cq-16k",
                          "--data", str(corpus), "--dest", str(dest), "--plain-export",
                          "--export-args", "--fit-seconds 2"])
    assert rc == 0
    from neurocodec.train.checkpoint import latest_checkpoint, load_checkpoint

    mine = load_checkpoint(latest_checkpoint(tmp_path / "runs" / "cq-16k"))
    theirs = load_checkpoint(latest_checkpoint(work / "runs" / "cq-16k"))
    assert mine["step"] == theirs["step"] and mine["meta"]["manifest"] == str(corpus.resolve())
    assert all(torch.equal(mine["model"][k], v) for k, v in theirs["model"].items())
    from neurocodec.codecs.cq import CqCodec

    model = CqCodec.from_pretrained(dest / "cq-16k" / "model.safetensors")
    x = sf.read(corpus.parent / "f3.flac", dtype="float32")[0][None]
    enc = model.compress(x, 16)
    y = model.decompress(enc.chunks, 1, x.shape[1], 16)
    assert y.shape == x.shape and np.isfinite(y).all()
    training = json.loads((dest / "cq-16k" / "training.json").read_text())
    assert training["step"] == theirs["step"] and training["meta"]["gpu_pack"]["file"] == "pack-1.safetensors"


def test_a_run_on_a_pack_trains_and_exports_with_the_corpus_it_was_packed_from(tmp_path, corpus):
    from dataclasses import replace

    from neurocodec.codecs.cmrl import CmrlCodec, CmrlConfig
    from neurocodec.nn.cmrl_blocks import AutoencoderConfig
    from neurocodec.train.cli import default_build_data
    from neurocodec.train.export import export_run
    from neurocodec.train.recipe import make_recipe, register_recipe, unregister_recipe
    from neurocodec.train.trainer import Trainer

    tiny = AutoencoderConfig(channels=8, bottleneck_channels=4)
    register_recipe("tiny-cmrl-pack", CmrlConfig, lambda cfg: CmrlCodec(replace(cfg, modules=(tiny, tiny))),
                    replace=True, train={"batch_size": 2, "segment_samples": 2048, "threads": 1,
                                         "sources": ("speech-real",)})
    try:
        pack = tmp_path / "p.ncpack"
        write_pack(corpus, pack)
        recipe = make_recipe("tiny-cmrl-pack", ["train.steps=2"])
        data = default_build_data(pack, "train", recipe, 16000)  # `neurocodec train --data X.ncpack`
        assert isinstance(data, PackedSegments) and data.seconds == pytest.approx(2.1)  # train.sources
        Trainer(recipe, tmp_path / "run", data, None, progress=False, tensorboard=False, manifest=pack).fit()
        res = export_run(tmp_path / "run", "x", tmp_path / "w")  # no --data: the pack's source manifest
        fit = json.loads((res.directory / "training.json").read_text())["entropy_coder"]
        assert fit["seconds"] == pytest.approx(2.1)
    finally:
        unregister_recipe("tiny-cmrl-pack")
