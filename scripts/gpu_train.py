#!/usr/bin/env python3
"""Train every job of the GPU plan at once on one GPU, on wall-clock, and pack the results.

    python3 scripts/gpu_train.py --out "$OUT"                 # on the lent GPU machine (docs/training.md)
    python scripts/gpu_train.py --check --device cpu          # before: plan, data, weights, smoke step, sizes
    python scripts/gpu_train.py --device cpu --seconds 90 --job-seconds 5 --only cq-16k,cmrl-15.85k \\
        --set train.batch_size=2 --out /tmp/gpu-out           # the CPU dry run (tests/train/test_gpu_plan.py)

The plan is data: every ``scripts/gpu_plan/*.yaml`` lists jobs (weights name, recipe, bitrate,
init weights, overrides, export arguments, smoke-step overrides; see ``cq.yaml``), so a new codec
joins by adding a file.  Each job runs as its own process (``neurocodec train RECIPE --data PACK
--device cuda``) sharing the GPU: the audio pack (``scripts/gpu_pack_data.py``) is held on the
GPU, the step runs under bf16 autocast (a job may set ``train.amp=off``), and
``train.max_seconds`` stops every job, with a checkpoint, before the total budget (``--seconds``,
default 540) is spent.  Every ``--pack-every`` seconds (60) the model tensors of every job's
latest checkpoint are packed into at most six safetensors files in ``--out`` (each under
15.5 MiB, 62 MiB together: what the device tool brings back; a job too large for one file is
split over several, float32 becomes float16 when everything does not fit, and no file is ever
written over the limit), next to ``summary.json`` and ``gpu_train.log``.
``scripts/gpu_import.py`` turns those into run folders and ``neurocodec export`` into shipped
weights.

``--check`` (run it here, before the device call) also runs the *smoke step* of every job: two
training steps, a validation and a checkpoint of the job's real training path on the CPU, under
bf16 autocast as on the GPU and under :class:`neurocodec.train.device_guard.DeviceGuard`, which
fails a tensor created on the CPU that meets the training device's tensors and a bfloat16 tensor
that reaches an FFT (the two ways the first GPU run lost its jobs); the sizes of the smoke
checkpoints give the pack layout it reports.

The machine lacks soundfile, soxr and constriction (and pesq, pystoi): nothing on the training
path calls them, so a missing one is replaced by a placeholder module that raises ImportError
when used (:func:`install_placeholders`); validation reports the loss terms and SNR of the hard
(quantized) path instead of PESQ.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
import types
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PLAN_DIR = ROOT / "scripts" / "gpu_plan"
DEFAULT_DATA = ROOT / "gpu-data" / "speech-16k.ncpack"
#: modules imported at module level by the package that the GPU machine lacks
OPTIONAL_MODULES = ("soundfile", "soxr", "constriction")
#: what the device tool brings back from $OUT: 8 files of at most 16 MiB, 64 MiB in all; two are
#: summary.json and gpu_train.log (a few hundred KiB: 2 MiB are kept for them)
MAX_PACK_FILES, MAX_PACK_BYTES, MAX_TOTAL_BYTES = 6, int(15.5 * 2**20), 62 * 2**20
PACK_FORMAT = "neurocodec-gpu-pack"
#: settings of every job (before the plan's and the command line's)
BASE_SETTINGS = ("train.amp=bf16", "train.threads=1", "train.keep_last=2", "train.val_batches=2",
                 "train.log_every=25")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class PlanError(Exception):
    """The plan, the data or the arguments cannot work (one line, exit status 2)."""


# -- optional modules ----------------------------------------------------------------------------

class _Placeholder(types.ModuleType):
    """Stands in for a module that is not installed: importing it works, using it raises."""

    def __getattr__(self, attr: str):
        if attr.startswith("__") and attr.endswith("__"):
            raise AttributeError(attr)
        raise ImportError(f"{self.__name__} is not installed on this machine (gpu_train.py placeholder; "
                          f"{self.__name__}.{attr} was used)")


def install_placeholders(names=OPTIONAL_MODULES) -> list[str]:
    """Put a :class:`_Placeholder` in ``sys.modules`` for each of ``names`` that cannot be
    imported; returns their names."""
    import importlib

    missing = []
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError:
            sys.modules[name] = _Placeholder(name)
            missing.append(name)
    return missing


def _import_path() -> None:
    src = str(ROOT / "src")
    if src not in sys.path:
        sys.path.insert(0, src)


# -- the plan ------------------------------------------------------------------------------------

@dataclass
class Job:
    """One operating point to train (see scripts/gpu_plan/cq.yaml)."""

    name: str
    recipe: str
    family: str
    bitrate: float | None = None
    init: str | None = None
    steps: int | None = None
    set: list[str] = field(default_factory=list)
    export: list[str] = field(default_factory=list)
    smoke: list[str] = field(default_factory=list)

    def run_dir(self, work: Path) -> Path:
        return work / "runs" / self.name


def _str_list(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, (str, int, float)) for v in value):
        raise PlanError(f"{where} must be a list of strings")
    return [str(v) for v in value]


def load_plan(plan_dir: Path = PLAN_DIR, only: list[str] | None = None) -> list[Job]:
    """Every job of ``plan_dir/*.yaml`` (files in name order), or only those named in ``only``."""
    import yaml

    files = sorted(Path(plan_dir).glob("*.yaml"))
    if not files:
        raise PlanError(f"no plan files (*.yaml) in {plan_dir}")
    jobs: list[Job] = []
    for path in files:
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as e:
            raise PlanError(f"{path}: not valid YAML: {str(e).splitlines()[0]}") from None
        unknown = set(data) - {"defaults", "jobs"}
        if unknown or not isinstance(data.get("jobs"), list):
            raise PlanError(f"{path}: expected 'defaults' and a 'jobs' list (unknown: {sorted(unknown)})")
        defaults = data.get("defaults") or {}
        if set(defaults) - {"set", "steps", "export", "smoke"}:
            raise PlanError(f"{path}: defaults may hold set, steps, export, smoke (got {sorted(defaults)})")
        for i, entry in enumerate(data["jobs"]):
            where = f"{path.name} job {i + 1}"
            if not isinstance(entry, dict):
                raise PlanError(f"{where}: expected a mapping")
            extra = set(entry) - {"name", "recipe", "bitrate", "init", "steps", "set", "export", "smoke"}
            if extra or "name" not in entry or "recipe" not in entry:
                raise PlanError(f"{where}: needs name and recipe; known fields are name, recipe, bitrate, init, "
                                f"steps, set, export, smoke (unknown: {sorted(extra)})")
            name = str(entry["name"])
            if not _NAME_RE.match(name):
                raise PlanError(f"{where}: name '{name}' must be letters, digits, '.', '_' or '-'")
            steps = entry.get("steps", defaults.get("steps"))
            jobs.append(Job(name=name, recipe=str(entry["recipe"]), family=path.stem,
                            bitrate=None if entry.get("bitrate") is None else float(entry["bitrate"]),
                            init=entry.get("init"), steps=None if steps is None else int(steps),
                            set=_str_list(defaults.get("set"), where) + _str_list(entry.get("set"), where),
                            export=_str_list(entry.get("export", defaults.get("export")), where),
                            smoke=_str_list(defaults.get("smoke"), where) + _str_list(entry.get("smoke"), where)))
    names = [j.name for j in jobs]
    dups = sorted({n for n in names if names.count(n) > 1})
    if dups:
        raise PlanError(f"job names used twice: {', '.join(dups)}")
    if only:
        unknown = sorted(set(only) - set(names))
        if unknown:
            raise PlanError(f"--only: no job named {', '.join(unknown)} (jobs: {', '.join(names)})")
        jobs = [j for j in jobs if j.name in only]
    return jobs


def job_settings(job: Job, extra: list[str], max_seconds: float | None, ckpt_seconds: float | None) -> list[str]:
    """The ``--set`` values of a job: base, plan, command line, then the clock."""
    out = list(BASE_SETTINGS)
    if job.steps is not None:
        out.append(f"train.steps={job.steps}")
    out += job.set + list(extra)
    if ckpt_seconds:
        out.append(f"train.ckpt_every_seconds={ckpt_seconds:g}")
    if max_seconds is not None:
        out.append(f"train.max_seconds={max_seconds:.1f}")
    return out


def train_argv(job: Job, data: Path, work: Path, device: str, settings: list[str]) -> list[str]:
    """The ``neurocodec train`` arguments of a job."""
    argv = ["train", job.recipe, "--data", str(data), "--out", str(job.run_dir(work)), "--device", device,
            "--no-quality", "-q"]
    if job.bitrate is not None:
        argv += ["--bitrate", f"{job.bitrate:g}"]
    if job.init:
        argv += ["--init", str(ROOT / job.init)]
    for s in settings:
        argv += ["--set", s]
    return argv


#: the size of a job's tensors: ``(name, bytes as checkpointed, float32 that float16 can hold)`` each
TensorSizes = list[tuple[str, int, bool]]


def check_jobs(jobs: list[Job], extra: list[str]) -> dict[str, TensorSizes]:
    """Build every job's recipe and model (catching typos in names, overrides and export
    arguments) and check its init weights; returns the tensors of each freshly built model (an
    estimate of what is packed: the smoke step measures what a checkpoint really holds)."""
    _import_path()
    from neurocodec.train.cli import add_export_parser
    from neurocodec.train.recipe import build_model, make_recipe
    from neurocodec.errors import UserError

    export_parser = argparse.ArgumentParser(prog="export", add_help=False, exit_on_error=False)
    sub = export_parser.add_subparsers()
    add_export_parser(sub)
    sizes = {}
    for job in jobs:
        try:
            recipe = make_recipe(job.recipe, job_settings(job, extra, 60.0, 30.0), bitrate_kbps=job.bitrate)
            if job.smoke:
                make_recipe(job.recipe, job_settings(job, extra, 60.0, 30.0) + job.smoke, bitrate_kbps=job.bitrate)
            model = build_model(recipe)
        except UserError as e:
            raise PlanError(f"job {job.name}: {e}") from None
        if job.init:
            p = ROOT / job.init
            if not (p.is_file() or (p / "model.safetensors").is_file() or (p / "checkpoints").is_dir()):
                raise PlanError(f"job {job.name}: init weights not found: {job.init}")
        try:
            ns, rest = export_parser.parse_known_args(["export", "RUN", "--name", job.name, *job.export])
        except (argparse.ArgumentError, SystemExit) as e:
            raise PlanError(f"job {job.name}: bad export arguments {job.export}: {e}") from None
        if rest:
            raise PlanError(f"job {job.name}: unknown export arguments {rest}")
        sizes[job.name] = tensor_sizes(model.state_dict())
    return sizes


# -- packing checkpoints -------------------------------------------------------------------------

#: bytes of a safetensors header entry per tensor (besides its name), of a job's record in a file's
#: metadata (recipe, metrics, run metadata as JSON), and of the rest of a file's header
TENSOR_OVERHEAD, JOB_OVERHEAD, FILE_OVERHEAD = 160, 48 * 1024, 16 * 1024
_F16_MAX = 65504.0


def _halvable(t) -> bool:
    """A float32 tensor that float16 holds without overflow."""
    import torch

    if t.dtype != torch.float32:
        return False
    return t.numel() == 0 or bool(torch.isfinite(t).all()) and float(t.abs().max()) < _F16_MAX


def tensor_sizes(state: dict[str, Any]) -> TensorSizes:
    """:data:`TensorSizes` of a state dict (a checkpoint's ``model``)."""
    return [(k, t.numel() * t.element_size(), _halvable(t)) for k, t in state.items()]


def stored_tensor(t, dtype: str):
    """A checkpoint tensor as a pack stores it: on the CPU, float32 as float16 when ``dtype`` is
    float16 and the values fit (:func:`_halvable`)."""
    import torch

    t = t.detach().cpu()
    if dtype == "float16" and _halvable(t):
        t = t.to(torch.float16)
    return t.contiguous().clone()


@dataclass
class Part:
    """The tensors of one job (all of them, or part ``index`` of ``count``) in one pack file."""

    job: str
    index: int
    count: int
    keys: list[str]
    bytes: int


def split_job(name: str, sizes: TensorSizes, dtype: str, cap: int) -> list[Part]:
    """A job's tensors, in order, in as few parts of at most ``cap`` bytes as they fill."""
    chunks: list[tuple[list[str], int]] = []
    keys: list[str] = []
    used = JOB_OVERHEAD
    for key, nbytes, half in sizes:
        b = (nbytes // 2 if dtype == "float16" and half else nbytes) + TENSOR_OVERHEAD + len(name) + 1 + len(key)
        if JOB_OVERHEAD + b > cap:
            raise PlanError(f"job {name}: tensor {key} alone ({b / 2**20:.1f} MiB in {dtype}) does not fit a "
                            f"pack file of {cap / 2**20:.1f} MiB")
        if keys and used + b > cap:
            chunks.append((keys, used))
            keys, used = [], JOB_OVERHEAD
        keys.append(key)
        used += b
    chunks.append((keys, used))
    return [Part(name, i + 1, len(chunks), k, b) for i, (k, b) in enumerate(chunks)]


def assign_files(sizes: dict[str, TensorSizes], max_files: int = MAX_PACK_FILES, max_bytes: int = MAX_PACK_BYTES,
                 max_total: int = MAX_TOTAL_BYTES) -> tuple[list[list[Part]], str]:
    """The parts of every job in each pack file, and the float dtype to store: float32 when
    everything fits the limits, else float16 (half the bytes).  A job larger than a file is
    split over several (tensor by tensor); parts are placed first fit, largest first, never two
    parts of one job in one file.  Raises :class:`PlanError` when even float16 does not fit."""
    cap = max_bytes - FILE_OVERHEAD
    for dtype in ("float32", "float16"):
        parts = [p for name in sorted(sizes) for p in split_job(name, sizes[name], dtype, cap)]
        if sum(p.bytes for p in parts) > max_total:
            continue
        bins: list[list[Part]] = []
        used: list[int] = []
        for p in sorted(parts, key=lambda p: (-p.bytes, p.job, p.index)):
            for i, u in enumerate(used):
                if u + p.bytes <= cap and all(q.job != p.job for q in bins[i]):
                    bins[i].append(p)
                    used[i] += p.bytes
                    break
            else:
                bins.append([p])
                used.append(p.bytes)
        if len(bins) <= max_files:
            return [sorted(b, key=lambda p: (p.job, p.index)) for b in bins], dtype
    total = sum(n for s in sizes.values() for _, n, _ in s)
    raise PlanError(f"the jobs' weights ({total / 2**20:.1f} MiB as checkpointed) do not fit {max_files} files of "
                    f"{max_bytes / 2**20:.1f} MiB, {max_total / 2**20:.0f} MiB in all, even in float16: split the plan")


def describe_layout(files: list[list[Part]], dtype: str) -> str:
    """One line: how many files, their sizes, and the jobs split over several."""
    split = sorted({p.job for b in files for p in b if p.count > 1})
    return (f"{len(files)} pack file(s) of " + ", ".join(f"{sum(p.bytes for p in b) / 2**20:.1f}" for b in files)
            + f" MiB ({sum(p.bytes for b in files for p in b) / 2**20:.1f} MiB), stored as {dtype}"
            + (f"; split over files: {', '.join(split)}" if split else ""))


def read_latest(job: Job, work: Path):
    """``(checkpoint path, state)`` of a job's newest readable checkpoint, or ``(None, None)``."""
    _import_path()
    from neurocodec.errors import WeightsError
    from neurocodec.train.checkpoint import list_checkpoints, load_checkpoint

    for ck in reversed(list_checkpoints(job.run_dir(work))):
        try:
            return ck, load_checkpoint(ck)
        except (WeightsError, FileNotFoundError):  # pruned or being replaced right now: the one before
            continue
    return None, None


def job_record(job: Job, ck: Path, state: dict[str, Any], dtype: str) -> dict[str, Any]:
    """What a pack stores about a job besides its tensors (enough to rebuild a checkpoint)."""
    return {"job": asdict(job), "checkpoint": ck.name, "step": int(state["step"]),
            "total_steps": int(state["total_steps"]), "phase": state.get("phase"), "recipe": state["recipe"],
            "meta": state.get("meta", {}), "metrics": state.get("metrics", {}), "dtype": dtype}


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.part")
    tmp.write_bytes(data)
    os.replace(tmp, path)


@dataclass
class PackResult:
    records: dict[str, dict[str, Any]]  # by job name: what the packs hold about it
    files: list[str]
    dtype: str
    left_out: list[str]  # jobs with a checkpoint that no pack holds (they did not fit: see the log)
    layout: str


def write_packs(jobs: list[Job], work: Path, out: Path, extra_meta: dict[str, Any], *,
                max_files: int = MAX_PACK_FILES, max_bytes: int = MAX_PACK_BYTES,
                max_total: int = MAX_TOTAL_BYTES) -> PackResult:
    """Pack every job's latest checkpoint (model tensors and record) into ``out/pack-K.safetensors``
    (laid out by :func:`assign_files` on what the checkpoints hold now).  No file is ever written
    over ``max_bytes``: when the checkpoints do not fit the limits at all, the largest jobs are
    left out (``left_out``) until the rest does; pack files of an earlier, larger layout are
    removed.  Jobs without a checkpoint yet are not in the packs."""
    from safetensors.torch import save

    by_name = {j.name: j for j in jobs}
    states = {}
    for job in jobs:
        ck, state = read_latest(job, work)
        if state is not None:
            states[job.name] = (ck, state)
    sizes = {name: tensor_sizes(st["model"]) for name, (_, st) in states.items()}
    left_out: list[str] = []
    while True:
        try:
            files, dtype = assign_files(sizes, max_files, max_bytes, max_total)
            break
        except PlanError:
            drop = max(sizes, key=lambda n: (sum(b for _, b, _ in sizes[n]), n))
            left_out.append(drop)
            del sizes[drop]
    records: dict[str, dict[str, Any]] = {}
    written: list[str] = []
    for k, parts in enumerate(files, 1):
        tensors: dict[str, Any] = {}
        meta = {"format": PACK_FORMAT, "pack": json.dumps(extra_meta)}
        recs = {}
        for p in parts:
            ck, state = states[p.job]
            for key in p.keys:
                tensors[f"{p.job}/{key}"] = stored_tensor(state["model"][key], dtype)
            rec = job_record(by_name[p.job], ck, state, dtype)
            rec.update(part=p.index, parts=p.count, tensors=len(p.keys))
            meta[f"job/{p.job}"] = json.dumps(rec)
            recs[p.job] = rec
        blob = save(tensors, metadata=meta)
        path = out / f"pack-{k}.safetensors"
        if len(blob) > max_bytes:  # the overheads above make this unreachable; never write such a file
            left_out += sorted(recs)
            path.unlink(missing_ok=True)
            continue
        _atomic_write(path, blob)
        written.append(path.name)
        for name, rec in recs.items():
            records.setdefault(name, {k: v for k, v in rec.items() if k not in ("part", "tensors")})
    for old in out.glob("pack-*.safetensors"):
        m = re.fullmatch(r"pack-(\d+)\.safetensors", old.name)
        if m and int(m.group(1)) > len(files):
            old.unlink()
    left_out = sorted(set(left_out))
    for name in left_out:
        records.pop(name, None)
    return PackResult(records, written, dtype, left_out, describe_layout(files, dtype))


# -- the smoke step ------------------------------------------------------------------------------

def smoke_settings(steps: int) -> list[str]:
    """What the smoke step changes in a job's settings: ``steps`` steps of batch 2, validation and
    a checkpoint at the end (so that what the checkpoint holds is measured)."""
    return [f"train.steps={steps}", "train.batch_size=2", f"train.val_every={steps}", "train.val_batches=1",
            f"train.ckpt_every={steps}", "train.log_every=1", "train.keep_last=1", "train.audio_samples=0",
            "train.num_workers=0"]


def _where(e: BaseException) -> str:
    """``file:line`` of the innermost frame of ``e``'s traceback inside the package."""
    import traceback

    frames = [f for f in traceback.extract_tb(e.__traceback__) if "/neurocodec/" in f.filename.replace(os.sep, "/")
              and not f.filename.endswith("device_guard.py")]
    if not frames:
        return ""
    f = frames[-1]
    name = f.filename.replace(os.sep, "/")
    return f" [{name[name.rindex('/neurocodec/') + 1:]}:{f.lineno}]"


def smoke_jobs(jobs: list[Job], data: Path, extra: list[str], steps: int = 2,
               say=print) -> tuple[dict[str, TensorSizes], list[str]]:
    """Run every job's real training path (``neurocodec train`` in this process, on the CPU) for
    ``steps`` steps of batch 2 with its plan settings (bf16 autocast included, on the CPU) and the
    job's ``smoke`` settings (e.g. an adversarial phase that starts at step 1 instead of 3000),
    under :class:`neurocodec.train.device_guard.DeviceGuard`: a tensor created on the CPU that meets
    the training device's tensors, or a bfloat16 tensor that reaches an FFT, fails the job here
    as it would on the GPU.  Returns what each passing job's checkpoint holds (what the packs
    will carry) and a line for each job that failed."""
    import shutil
    import tempfile

    _import_path()
    from neurocodec.train.cli import add_train_parser
    from neurocodec.train.device_guard import DeviceGuard

    parser = argparse.ArgumentParser(prog="neurocodec")
    add_train_parser(parser.add_subparsers())
    sizes: dict[str, TensorSizes] = {}
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="gpu_smoke_") as tmp:
        work = Path(tmp)
        for job in jobs:
            t = time.time()
            settings = job_settings(job, extra, None, None) + smoke_settings(steps) + job.smoke
            targs = parser.parse_args(train_argv(job, data, work, "cpu", settings))
            log = io.StringIO()
            try:
                guard = DeviceGuard()
                with guard, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
                    targs.func(targs)
                ck, state = read_latest(job, work)
                if state is None or int(state["step"]) != steps:
                    raise RuntimeError(f"no checkpoint at step {steps} ({ck})")
                sizes[job.name] = tensor_sizes(state["model"])
                mib = sum(n for _, n, _ in sizes[job.name]) / 2**20
                amp = next((s.split("=", 1)[1] for s in reversed(settings) if s.startswith("train.amp=")), "off")
                say(f"smoke {job.name}: {steps} step(s) and a validation on the CPU under the device guard "
                    f"(amp {amp}, {guard.calls} torch calls) in {time.time() - t:.1f} s; its checkpoint holds "
                    f"{mib:.1f} MiB of tensors")
            except Exception as e:  # every failure of a job's training path is the job's
                msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
                failures.append(f"{job.name}: {type(e).__name__}: {msg}{_where(e)}")
                tail = "\n".join(log.getvalue().strip().splitlines()[-8:])
                say(f"smoke {job.name}: FAILED after {time.time() - t:.1f} s: {failures[-1]}"
                    + (f"\n  its output ended with:\n{tail}" if tail else ""))
            finally:
                shutil.rmtree(job.run_dir(work), ignore_errors=True)
    return sizes, failures


# -- the run ---------------------------------------------------------------------------------------

@dataclass
class Running:
    job: Job
    proc: subprocess.Popen
    log: Path
    started: float
    returncode: int | None = None


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _progress_line(name: str, rec: dict[str, Any] | None, status: str) -> str:
    if rec is None:
        return f"{name:14s} {status:10s} no checkpoint yet"
    tr, val = rec["metrics"].get("train", {}), rec["metrics"].get("val", {})

    def f(d, k, fmt):
        return format(d[k], fmt) if isinstance(d.get(k), (int, float)) and math.isfinite(d[k]) else "-"

    return (f"{name:14s} {status:10s} step {rec['step']:6d}  {f(tr, 'train/steps_per_second', '6.2f')} steps/s  "
            f"loss {f(tr, 'train/loss', '.4g')}  kbps {f(tr, 'rate/estimated_kbps', '.2f')}  "
            f"val snr {f(val, 'val/metrics/snr_db', '.2f')} dB")


def run(args) -> int:
    t0 = time.time()
    if args.work is None:
        import tempfile

        args.work = tempfile.mkdtemp(prefix="gpu_train_")
    out, work = Path(args.out).resolve(), Path(args.work).resolve()
    out.mkdir(parents=True, exist_ok=True)
    log_lines: list[str] = []

    def say(msg: str) -> None:
        line = f"[{time.time() - t0:6.1f}s] {msg}"
        print(line, flush=True)
        log_lines.append(line)
        _atomic_write(out / "gpu_train.log", ("\n".join(log_lines) + "\n").encode())

    placeholders = install_placeholders()
    _import_path()
    jobs = load_plan(Path(args.plan), [s for s in args.only.split(",") if s] if args.only else None)
    extra = list(args.set or [])
    say(f"{len(jobs)} job(s): {', '.join(j.name for j in jobs)}; placeholders for {placeholders or 'nothing'}")
    try:
        data = Path(args.data).resolve()  # the job processes run in the repository root
    except (OSError, RuntimeError) as e:  # a symlink loop (a pack folder linked to itself)
        raise PlanError(f"--data {args.data}: {e}") from None
    from neurocodec.data.packed import read_pack
    from neurocodec.errors import UserError

    try:
        pack = read_pack(data)
    except UserError as e:
        raise PlanError(str(e)) from None
    say(f"data {data}: " + ", ".join(f"{n} {sp.seconds(pack.sample_rate):.0f} s" for n, sp in pack.splits.items())
        + f" at {pack.sample_rate} Hz (from {pack.header.get('manifest')})")
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        raise PlanError("--device cuda: torch sees no GPU here (torch " + torch.__version__ + ")")
    if args.device == "cuda":
        say(f"GPU {torch.cuda.get_device_name(0)}, torch {torch.__version__}, CUDA {torch.version.cuda}")
    sizes = check_jobs(jobs, extra)
    files, dtype = assign_files(sizes)
    say(f"checked {len(jobs)} job(s); their freshly built models would need " + describe_layout(files, dtype))
    if args.check:
        failures: list[str] = []
        if args.smoke_steps > 0:
            measured, failures = smoke_jobs(jobs, data, extra, args.smoke_steps, say)
            sizes = {**sizes, **measured}
            limits = (f"the limits: {MAX_PACK_FILES} files of {MAX_PACK_BYTES / 2**20:.1f} MiB, "
                      f"{MAX_TOTAL_BYTES / 2**20:.1f} MiB in all")
            try:
                files, dtype = assign_files(sizes)
                say("what the smoke checkpoints hold" + (" (and the fresh models of the jobs that failed)"
                                                         if failures else "")
                    + " needs " + describe_layout(files, dtype) + f" ({limits})")
            except PlanError as e:
                failures.append(f"pack sizes: {e} ({limits})")
        sent = travel_bytes(data)
        if sent is not None:
            say(f"the device tool would send about {sent / 2**20:.1f} MiB (tracked and untracked files and the "
                f"carried pack; the limit is 64 MiB)" + ("" if sent < 64 * 2**20 else ": TOO MUCH"))
        for job in jobs:
            print(" ".join(["neurocodec", *train_argv(job, data, work, args.device,
                                                       job_settings(job, extra, None, None))]))
        if failures:
            raise PlanError(f"the smoke step failed for {len(failures)} job(s) (a GPU run would lose them):\n  "
                            + "\n  ".join(failures))
        return 0

    budget = float(args.seconds)
    margin = min(30.0, 0.15 * budget) if args.margin is None else float(args.margin)
    deadline = t0 + budget - margin  # the jobs' training stops here ...
    kill_at = t0 + budget - margin / 3  # ... and any still running is ended here
    ckpt_seconds = max(5.0, 0.8 * args.pack_every)
    work.mkdir(parents=True, exist_ok=True)
    (work / "logs").mkdir(exist_ok=True)
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS=str(args.threads),
               PYTHONPATH=os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    taken = [str(j.run_dir(work)) for j in jobs if j.run_dir(work).exists()]
    if taken:
        raise PlanError(f"{', '.join(taken)} exist(s): use a fresh --work folder")
    mps = args.mps and args.device == "cuda" and start_mps(say)
    try:
        return _train(args, t0, out, work, data, pack, jobs, extra, say, log_lines, deadline,
                      kill_at, ckpt_seconds, env, budget)
    finally:
        if mps:
            stop_mps()


def _train(args, t0, out, work, data, pack, jobs, extra, say, log_lines, deadline, kill_at,
           ckpt_seconds, env, budget) -> int:
    import torch

    running: list[Running] = []
    for job in jobs:
        settings = job_settings(job, extra, None, ckpt_seconds)
        cmd = [sys.executable, str(Path(__file__).resolve()), "child", "--deadline", f"{deadline:.3f}",
               "--job-seconds", str(args.job_seconds or 0), "--data", str(data), "--",
               *train_argv(job, data, work, args.device, settings)]
        log = work / "logs" / f"{job.name}.log"
        with open(log, "wb") as f:
            proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=str(ROOT))
        running.append(Running(job, proc, log, time.time()))
    say(f"started {len(running)} process(es) on {args.device}; training stops {deadline - t0:.0f} s after the "
        f"start, packs every {args.pack_every:g} s to {out}; runs and logs in {work}")

    pack_meta = {"data": str(data), "data_header": {k: pack.header.get(k) for k in ("manifest", "manifest_sha256",
                                                                                     "sample_rate", "stats")},
                 "device": args.device, "budget_s": budget,
                 "torch": torch.__version__,
                 "gpu": torch.cuda.get_device_name(0) if args.device == "cuda" else None}
    records: dict[str, dict[str, Any]] = {}
    next_pack = time.time() + args.pack_every
    killed = False
    while True:
        time.sleep(0.5)
        for r in running:
            if r.returncode is None and r.proc.poll() is not None:
                r.returncode = r.proc.returncode
                say(f"{r.job.name} exited with status {r.returncode} after {time.time() - r.started:.0f} s"
                    + ("" if r.returncode == 0 else "\n" + _tail(r.log, 15)))
        alive = [r for r in running if r.returncode is None]
        now = time.time()
        if not alive:
            break
        if now >= kill_at and not killed:
            say(f"budget reached: ending {', '.join(r.job.name for r in alive)}")
            for r in alive:
                r.proc.send_signal(signal.SIGTERM)
            killed = True
            kill_at = now + 5
        elif now >= kill_at and killed:
            for r in alive:
                r.proc.kill()
        if now >= next_pack:
            _pack(jobs, work, out, pack_meta, records, say)
            if args.device == "cuda":
                say(_gpu_usage())
            next_pack = now + args.pack_every
    last = _pack(jobs, work, out, pack_meta, records, say)
    summary = {"wall_s": round(time.time() - t0, 1), **pack_meta,
               "packs": None if last is None else {"files": last.files, "dtype": last.dtype, "layout": last.layout,
                                                   "left_out": last.left_out},
               "jobs": {r.job.name: {"returncode": r.returncode,
                                     "step": records.get(r.job.name, {}).get("step"),
                                     "metrics": records.get(r.job.name, {}).get("metrics"),
                                     "log_tail": _tail(r.log, 12)} for r in running}}
    _atomic_write(out / "summary.json", (json.dumps(summary, indent=1) + "\n").encode())
    say("final:\n" + "\n".join(_progress_line(r.job.name, records.get(r.job.name),
                                              "ok" if r.returncode == 0 else f"status {r.returncode}")
                               for r in running))
    for r in running:
        log_lines.append(f"--- {r.job.name} ({r.log}) ---\n{_tail(r.log, 40)}")
    _atomic_write(out / "gpu_train.log", ("\n".join(log_lines) + "\n").encode())
    failed = [r.job.name for r in running if r.returncode != 0 or r.job.name not in records]
    if failed:
        print(f"gpu_train: {len(failed)} job(s) failed or left no checkpoint: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def start_mps(say) -> bool:
    """Start NVIDIA's MPS control daemon, so that the jobs' small kernels run side by side instead
    of time-sliced between processes (opt-in, ``--mps``; untested on the lent machine).  It
    changes no setting of the GPU (compute mode stays as it is).  A CUDA start that fails or hangs
    under it stops the daemon again and the plan runs without; returns whether MPS is on."""
    import shutil

    exe = shutil.which("nvidia-cuda-mps-control")
    if exe is None:
        say("--mps: nvidia-cuda-mps-control not found; running without MPS")
        return False
    try:
        subprocess.run([exe, "-d"], check=True, timeout=20, capture_output=True)
        probe = subprocess.run([sys.executable, "-c", "import torch; torch.ones(1, device='cuda').sum().item()"],
                               timeout=60, capture_output=True, text=True)
        if probe.returncode == 0:
            say("MPS control daemon started; a CUDA process starts under it")
            return True
        say(f"--mps: CUDA failed under MPS ({probe.stderr.strip().splitlines()[-1:]}); stopping it")
    except (OSError, subprocess.SubprocessError) as e:
        say(f"--mps: {type(e).__name__}: {e}; stopping it")
    stop_mps()
    return False


def stop_mps() -> None:
    import shutil

    exe = shutil.which("nvidia-cuda-mps-control")
    if exe:
        try:
            subprocess.run([exe], input="quit\n", text=True, timeout=20, capture_output=True)
        except (OSError, subprocess.SubprocessError):
            pass


def travel_bytes(data: Path) -> int | None:
    """Bytes the device tool sends from this checkout: tracked files, untracked files git does not
    ignore, and the pack (carried); None outside a git checkout."""
    total = 0
    try:
        for extra in ([], ["-o", "--exclude-standard"]):
            res = subprocess.run(["git", "ls-files", "-z", *extra], cwd=ROOT, capture_output=True, check=True)
            for name in res.stdout.decode(errors="replace").split("\0"):
                p = ROOT / name
                if name and p.is_file() and not p.is_symlink():
                    total += p.stat().st_size
    except (OSError, subprocess.SubprocessError):
        return None
    inside = ROOT in data.parents
    ignored = inside and subprocess.run(["git", "check-ignore", "-q", str(data)], cwd=ROOT).returncode == 0
    return total + (data.stat().st_size if ignored else 0)


def _gpu_usage() -> str:
    """One line of nvidia-smi: utilisation and memory (how much room the plan leaves)."""
    try:
        res = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu,memory.used,memory.total,power.draw",
                              "--format=csv,noheader"], capture_output=True, text=True, timeout=10)
        return "GPU utilisation, memory used/total, power: " + res.stdout.strip()
    except (OSError, subprocess.SubprocessError) as e:
        return f"nvidia-smi: {e}"


def _pack(jobs, work, out, pack_meta, records, say):
    """:func:`write_packs`, logging (not raising) what goes wrong, so the jobs keep training;
    ``records`` becomes what the packs hold now.  Returns the :class:`PackResult` or None."""
    try:
        res = write_packs(jobs, work, out, pack_meta)
    except Exception as e:  # a full disk, an unreadable checkpoint: the next pack may work
        say(f"packing failed: {type(e).__name__}: {e}")
        return None
    records.clear()
    records.update(res.records)
    say("packed: " + ("; ".join(f"{n} step {records[n]['step']}" for n in sorted(records)) or "no checkpoint yet")
        + (f" ({res.layout})" if res.files else ""))
    if res.left_out:
        say(f"WARNING: left out of the packs (their checkpoints do not fit the limits): {', '.join(res.left_out)}")
    return res


def child(args, train_args: list[str]) -> int:
    """One job's process: placeholders, imports and the pack first, then ``neurocodec train``
    with ``train.max_seconds`` = what is left until the deadline."""
    install_placeholders()
    _import_path()
    from neurocodec.data.packed import read_pack
    from neurocodec.errors import UserError
    from neurocodec.train.cli import add_train_parser  # the training commands only, not every CLI module

    parser = argparse.ArgumentParser(prog="neurocodec")
    add_train_parser(parser.add_subparsers())

    read_pack(args.data)  # decompressed once per process (cached); the training clock starts after it
    left = args.deadline - time.time()
    if args.job_seconds:
        left = min(left, args.job_seconds)
    if left < 1:
        print(f"gpu_train child: no time left ({left:.1f} s)", file=sys.stderr)
        return 3
    targs = parser.parse_args([*train_args, "--set", f"train.max_seconds={left:.1f}"])
    try:
        return int(targs.func(targs) or 0)
    except UserError as e:
        print(f"neurocodec: error: {e}", file=sys.stderr)
        return e.exit_code


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["child"]:
        ap = argparse.ArgumentParser(prog="gpu_train.py child")
        ap.add_argument("--deadline", type=float, required=True)
        ap.add_argument("--job-seconds", type=float, default=0.0)
        ap.add_argument("--data", required=True)
        sep = argv.index("--")
        return child(ap.parse_args(argv[1:sep]), argv[sep + 1:])
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.environ.get("OUT", str(ROOT / "gpu-out")),
                    help="where the packs, summary.json and gpu_train.log go (default $OUT)")
    ap.add_argument("--work", default=None, help="run folders and logs (default: a new folder under /tmp)")
    ap.add_argument("--data", default=str(DEFAULT_DATA), help="the audio pack (scripts/gpu_pack_data.py)")
    ap.add_argument("--plan", default=str(PLAN_DIR), help="folder of plan files (*.yaml)")
    ap.add_argument("--only", default="", help="comma-separated job names (default: every job)")
    ap.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    ap.add_argument("--seconds", type=float, default=540.0, help="total wall-clock budget (default 540 = 9 min)")
    ap.add_argument("--margin", type=float, default=None,
                    help="seconds kept for the last checkpoints and packs (default min(30, 15%% of --seconds))")
    ap.add_argument("--job-seconds", type=float, default=0.0, help="cap each job's training time (0: until the budget)")
    ap.add_argument("--pack-every", type=float, default=60.0, help="seconds between packs of the checkpoints")
    ap.add_argument("--threads", type=int, default=1, help="OMP threads per job process")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override for every job")
    ap.add_argument("--check", action="store_true",
                    help="check plan, data, recipes and weights, and run the smoke step of every job; train nothing")
    ap.add_argument("--smoke-steps", type=int, default=2,
                    help="--check: training steps of each job's smoke step on the CPU under the device guard "
                         "(0: no smoke step)")
    ap.add_argument("--mps", action="store_true",
                    help="run the jobs under NVIDIA MPS (kernels of all jobs side by side; untested; falls back)")
    args = ap.parse_args(argv)
    try:
        return run(args)
    except PlanError as e:
        print(f"gpu_train: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
