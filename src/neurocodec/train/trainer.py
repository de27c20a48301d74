"""The training loop shared by every learned codec.

:class:`Trainer` runs a :class:`~.recipe.Recipe` on a map-style dataset of ``(1, T)`` segments:
phases (zhen2019 §2.2.1 greedy-then-joint schedules), Adam with warm-up/decay, gradient clipping,
AMP on CUDA, optional ``torch.compile``, DDP under ``torchrun``, validation with injectable
quality metrics, TensorBoard/JSONL logs, atomic checkpoints every ``ckpt_every`` steps, exact
resumption and a divergence stop that keeps the last good checkpoint.
"""

from __future__ import annotations

import gc
import hashlib
import json
import math
import os
import platform
import shlex
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch

from ..audio import atomic_write_bytes
from .checkpoint import (BEST_NAME, capture_rng, checkpoint_dir, checkpoint_path, latest_checkpoint, load_checkpoint,
                         prune_checkpoints, restore_rng, save_checkpoint)
from .config import RESUMABLE_FIELDS
from .data import BatchStream, ShardedBatchSampler, iterate_once
from .distributed import DistContext, all_reduce_sum, gather_objects, init_distributed, shutdown
from .errors import RecipeError, TrainingDiverged
from .optim import DivergenceMonitor, build_optimizer, build_scheduler, select_parameters
from .protocol import ScheduledPhase, coerce_loss, phase_at, schedule_phases, to_float
from .recipe import Recipe, build_model, recipe_from_dict, recipe_to_dict
from .runlog import RunLogger
from .stop import StopRequest

#: a quality metric ``fn(reference, decoded, sample_rate) -> float`` on 1-D float32 arrays
MetricFn = Callable[[np.ndarray, np.ndarray, int], float]


@dataclass
class TrainResult:
    """Outcome of :meth:`Trainer.fit`.

    ``wall_time_s`` adds up every session of the run (resumptions included);
    ``steps_per_second`` is this session's steady training-loop speed (validation, checkpoints
    and the first step of each phase and session - compilation, warm-up - excluded)."""

    run_dir: Path
    step: int
    total_steps: int
    checkpoint: Path | None
    wall_time_s: float
    steps_per_second: float
    train_metrics: dict[str, float] = field(default_factory=dict)
    val_metrics: dict[str, float] = field(default_factory=dict)
    stopped_by: str = "steps"  # "steps" (train.steps or fit(until=)), "max_seconds" (the wall-clock budget) or "signal" (SIGINT/SIGTERM)
    signal: str | None = None  # "SIGINT" or "SIGTERM" when stopped_by == "signal"


def recipe_sample_rate(recipe: Recipe) -> int:
    """The audio rate a recipe trains at: ``train.sample_rate`` or the model config's ``sample_rate``."""
    sr = recipe.train.sample_rate or getattr(recipe.model, "sample_rate", None)
    if not sr:
        raise RecipeError(f"recipe '{recipe.name}' does not say its sample rate; set train.sample_rate=HZ")
    return int(sr)


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def hardware_summary(ctx: DistContext) -> str:
    """One line describing the machine(s) a run used."""
    if ctx.device.type == "cuda":
        dev = f"{torch.cuda.get_device_name(ctx.device)} (CUDA {torch.version.cuda})"
    else:
        dev = f"CPU {platform.processor() or platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} threads"
    return f"{ctx.world_size} process(es) x {dev}; {platform.system()} {platform.release()}"


def rate_kbps(terms: Mapping[str, float]) -> float | None:
    """The bitrate estimate among logged terms: ``rate/kbps``, ``rate/estimated_kbps``,
    ``rate/bits_per_second`` (/1000) or another ``rate/*kbps`` key that is not a target."""
    for key in ("rate/kbps", "rate/estimated_kbps"):
        if key in terms:
            return float(terms[key])
    if "rate/bits_per_second" in terms:
        return float(terms["rate/bits_per_second"]) / 1000.0
    for key, v in terms.items():
        if key.startswith("rate/") and key.endswith("kbps") and "target" not in key:
            return float(v)
    return None


class _StepModule(torch.nn.Module):
    """Wraps ``model.training_step`` as ``forward`` so DDP and torch.compile see the whole step."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, batch: torch.Tensor, step: int):
        out = coerce_loss(self.model.training_step(batch, step))
        return out.total, out.terms


class Trainer:
    """Train ``recipe``'s model on ``train_data`` into ``run_dir`` (see the module docstring).

    ``quality_metrics`` maps names to :data:`MetricFn` (e.g. ``{"pesq_wb": pesq_wb}``) computed on
    validation reconstructions (``model.reconstruct``); ``command`` and ``manifest`` are recorded
    for the model card."""

    def __init__(self, recipe: Recipe, run_dir: str | os.PathLike, train_data: Any, val_data: Any = None, *,
                 device: str = "cpu", resume: bool = False, quality_metrics: Mapping[str, MetricFn] | None = None,
                 command: str | None = None, manifest: str | os.PathLike | None = None, progress: bool = True,
                 tensorboard: bool = True, init: str | os.PathLike | None = None):
        recipe.train.validate()
        self.recipe = recipe
        self.cfg = recipe.train
        self.run_dir = Path(run_dir)
        self.train_data, self.val_data = train_data, val_data
        self.device_name, self.resume = device, resume
        self.quality_metrics = dict(quality_metrics or {})
        self.command = command if command is not None else shlex.join([Path(sys.argv[0]).name] + sys.argv[1:])
        self.manifest = None if manifest is None else Path(manifest)
        self.progress, self.tensorboard = progress, tensorboard
        self.init = None if init is None else Path(init)  # warm start of a fresh run (train/init_weights.py)
        self.model: torch.nn.Module | None = None
        self.sample_rate = recipe_sample_rate(recipe)

    # -- set-up ---------------------------------------------------------------------------
    def _seed(self, offset: int) -> None:
        s = self.cfg.seed + offset
        import random

        random.seed(s)
        np.random.seed(s % 2**32)
        torch.manual_seed(s)

    def _check_run_dir(self) -> Path | None:
        ckpt = latest_checkpoint(self.run_dir)
        if self.resume and ckpt is None:
            raise RecipeError(f"--resume: no checkpoint in {self.run_dir / 'checkpoints'}")
        if not self.resume and ckpt is not None:
            raise RecipeError(f"{self.run_dir} already holds a run (latest {ckpt.name}); "
                              "pass --resume to continue it or choose another --out")
        return ckpt

    def _check_resumed_recipe(self, stored: Mapping[str, Any]) -> None:
        mine = recipe_to_dict(self.recipe)
        try:  # a setting added after the run started reads as its default, not as a change
            stored = recipe_to_dict(recipe_from_dict(stored))
        except RecipeError:
            pass
        if stored["name"] != mine["name"]:
            raise RecipeError(f"{self.run_dir} trains recipe '{stored['name']}', not '{mine['name']}'")
        changed = [f"model.{k}" for k in set(stored["model"]) | set(mine["model"])
                   if stored["model"].get(k) != mine["model"].get(k)]
        changed += [f"train.{k}" for k in set(stored["train"]) | set(mine["train"])
                    if k not in RESUMABLE_FIELDS and stored["train"].get(k) != mine["train"].get(k)]
        if changed:
            raise RecipeError(f"cannot change {', '.join(sorted(changed))} when resuming {self.run_dir}")

    # -- main loop ------------------------------------------------------------------------
    def fit(self, until: int | None = None) -> TrainResult:
        """Train until ``recipe.train.steps``; returns a :class:`TrainResult`.

        ``until`` stops the session earlier, after that step, as an interruption would (a checkpoint
        is written there; schedules still follow ``steps``); so does ``train.max_seconds`` after the
        step that reaches the session's wall-clock budget, counted from here.  Raises :class:`TrainingDiverged` (a
        ``UserError``) when the loss or gradients blow up."""
        cfg = self.cfg
        self._t_fit = time.perf_counter()  # train.max_seconds counts from here (set-up included)
        ctx = init_distributed(self.device_name)
        log = None
        threads_before = torch.get_num_threads()
        try:
            if cfg.threads:
                torch.set_num_threads(cfg.threads)
            if cfg.batch_size % ctx.world_size:
                raise RecipeError(f"train.batch_size={cfg.batch_size} is not divisible by the {ctx.world_size} processes")
            ckpt_file = self._check_run_dir()
            state = load_checkpoint(ckpt_file) if ckpt_file else None
            if state is not None:
                self._check_resumed_recipe(state["recipe"])
            if state is not None and state["step"] >= cfg.steps:
                raise RecipeError(f"{self.run_dir} already reached step {state['step']} of {cfg.steps}; "
                                  "pass a larger --steps to train further")

            for data in (self.train_data, self.val_data):  # datasets that can live on the GPU (audio packs)
                if cfg.num_workers == 0 and callable(getattr(data, "to_device", None)):
                    data.to_device(ctx.device)
            self._seed(0)  # identical initial weights on every rank
            model = build_model(self.recipe)
            if not hasattr(model, "training_step") or not isinstance(model, torch.nn.Module):
                raise TypeError(f"recipe '{self.recipe.name}' built {type(model).__name__}, "
                                "not an nn.Module with training_step(batch, step)")
            init_report = None
            if self.init is not None and state is None:
                from .init_weights import init_from

                init_report = init_from(model, self.init)
            model.to(ctx.device).train()
            self.model = model
            self._seed(7919 * (ctx.rank + 1))  # per-rank noise / augmentation streams

            schedule = schedule_phases(model, cfg.steps, cfg.phases)
            per_rank = cfg.batch_size // ctx.world_size
            sampler = ShardedBatchSampler(len(self.train_data), per_rank, cfg.seed, ctx.rank, ctx.world_size)
            stream = BatchStream(self.train_data, sampler, cfg.num_workers)
            monitor = DivergenceMonitor(cfg.explode_factor, cfg.explode_window)
            amp_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(cfg.amp)
            # CUDA: fp16 (with a gradient scaler) or bf16; CPU: bf16 only (oneDNN/AMX kernels)
            use_amp = amp_dtype is not None and (ctx.device.type == "cuda" or amp_dtype == torch.bfloat16)
            scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)

            step, wall_before = 0, 0.0
            meta: dict[str, Any] = {"commands": [], "manifest": None, "manifest_sha256": None}
            metrics: dict[str, dict[str, float]] = {"train": {}, "val": {}}
            opt_state = None
            if state is not None:
                model.load_state_dict(state["model"])
                step = int(state["step"])
                stream.load_state_dict(state["data"])
                monitor.load_state_dict(state["monitor"])
                rng = state["rng"]
                if len(rng) == ctx.world_size:
                    restore_rng(rng[ctx.rank])
                else:
                    warnings.warn(f"resuming a {len(rng)}-process run with {ctx.world_size} processes: "
                                  "random streams restart, the result will not match an uninterrupted run")
                meta = dict(state["meta"])
                wall_before = float(meta.get("wall_time_s", 0.0))
                metrics = state.get("metrics", metrics)
                sp = phase_at(schedule, step)
                if state["phase"]["name"] == sp.phase.name and state["phase"]["index"] == sp.index:
                    opt_state = state
                if state.get("scaler") and scaler.is_enabled():
                    scaler.load_state_dict(state["scaler"])
            del state
            meta["commands"] = list(meta.get("commands", [])) + [self.command]
            if init_report is not None:
                meta["init"] = {"source": str(init_report.source), "sha256": file_sha256(init_report.source),
                                "loaded": len(init_report.loaded), "mismatched": init_report.mismatched,
                                "missing": init_report.missing}
            if self.manifest is not None:
                meta["manifest"] = str(self.manifest)
                meta["manifest_sha256"] = file_sha256(self.manifest) if self.manifest.is_file() else None
            meta.update(torch_version=str(torch.__version__), hardware=hardware_summary(ctx),
                        world_size=ctx.world_size, device=ctx.device.type,
                        train_segments=len(self.train_data),
                        val_segments=None if self.val_data is None else len(self.val_data),
                        phases=[{"name": p.phase.name, "steps": p.phase.steps, "lr": p.phase.lr} for p in schedule])

            log = RunLogger(self.run_dir, enabled=ctx.is_main, total=cfg.steps, initial=step,
                            progress=self.progress, tensorboard=self.tensorboard)
            if ctx.is_main:
                atomic_write_bytes(self.run_dir / "recipe.json",
                                   json.dumps(recipe_to_dict(self.recipe), indent=2).encode() + b"\n")
                log.text("recipe", "```\n" + json.dumps(recipe_to_dict(self.recipe), indent=2) + "\n```")
                if step:
                    log.message(f"resuming {self.run_dir} at step {step}")
                if init_report is not None:
                    log.message(init_report.summary())

            loop = _Loop(self, ctx, model, schedule, stream, monitor, scaler, amp_dtype if use_amp else None,
                         log, meta, metrics, wall_before)
            return loop.run(step, opt_state, min(until, cfg.steps) if until is not None else cfg.steps)
        finally:
            if log is not None:
                log.close()
            shutdown(ctx)
            torch.set_num_threads(threads_before)


class _Loop:
    """State of one training session (split from :class:`Trainer` to keep ``fit`` readable)."""

    def __init__(self, tr: Trainer, ctx: DistContext, model, schedule, stream, monitor, scaler, amp_dtype,
                 log: RunLogger, meta, metrics, wall_before: float):
        self.tr, self.cfg, self.ctx, self.model = tr, tr.cfg, ctx, model
        self.schedule, self.stream, self.monitor, self.scaler = schedule, stream, monitor, scaler
        self.amp_dtype, self.log, self.meta, self.metrics = amp_dtype, log, meta, metrics
        self.wall_before = wall_before
        self.t_start = time.perf_counter()
        self.loop_time = 0.0
        self.loop_steps = 0
        self.last_ckpt: Path | None = latest_checkpoint(tr.run_dir) if ctx.is_main else None
        self.phase: ScheduledPhase | None = None
        self.runner = self.opt = self.sched = None
        self.params: list[torch.nn.Parameter] = []
        # under DDP the processes agree on stopping through clock()'s all-reduce, which only runs
        # with a wall-clock setting: without one, a signal keeps its default effect there
        self.stop = StopRequest(enabled=not ctx.distributed or bool(tr.cfg.max_seconds or tr.cfg.ckpt_every_seconds))
        self.logged_reference = False
        self.warm_phase = -1  # phase whose first (untimed) step this session has run
        self.t_fit = getattr(tr, "_t_fit", self.t_start)
        self.t_last_ckpt = self.t_start

    # -- phases -----------------------------------------------------------------------------
    def enter_phase(self, sp: ScheduledPhase, state: Mapping[str, Any] | None) -> None:
        self.runner = self.opt = self.sched = None
        gc.collect()  # drop the previous DDP wrapper (and its gradient hooks) before making a new one
        if hasattr(self.model, "set_phase"):
            self.model.set_phase(sp.source if sp.source is not None else sp.phase)
        if hasattr(self.model, "phase_start_step"):
            self.model.phase_start_step = sp.start
        named = select_parameters(self.model, sp.phase)
        self.params = [p for _, p in named]
        self.opt = build_optimizer(named, sp.phase, self.cfg)
        self.sched = build_scheduler(self.opt, sp.phase, self.cfg)
        if state is not None:
            self.opt.load_state_dict(state["optimizer"])
            self.sched.load_state_dict(state["scheduler"])
        runner: torch.nn.Module = _StepModule(self.model)
        if self.ctx.distributed:
            from torch.nn.parallel import DistributedDataParallel as DDP

            runner = DDP(runner, device_ids=[self.ctx.device.index] if self.ctx.device.type == "cuda" else None,
                         find_unused_parameters=self.cfg.find_unused_parameters)
        if self.cfg.compile:
            runner = torch.compile(runner)
        self.runner = runner
        self.phase = sp
        if self.ctx.is_main and len(self.schedule) > 1:
            lr = sp.phase.lr if sp.phase.lr is not None else self.cfg.lr
            self.log.message(f"phase {sp.index + 1}/{len(self.schedule)} '{sp.phase.name}': steps "
                             f"{sp.start}-{sp.end}, lr {lr:g}, {sum(p.numel() for p in self.params):,} trainable parameters")

    # -- one step -----------------------------------------------------------------------------
    def train_step(self, step: int) -> tuple[float, dict[str, Any], float]:
        batch = next(self.stream).to(self.ctx.device, non_blocking=True)
        with torch.autocast(self.ctx.device.type, dtype=self.amp_dtype or torch.float32,
                            enabled=self.amp_dtype is not None):
            total, terms = self.runner(batch, step)
        if total.dim() != 0:
            raise TypeError(f"training_step must return a scalar loss, got shape {tuple(total.shape)}")
        self.scaler.scale(total).backward()
        if self.scaler.is_enabled():
            self.scaler.unscale_(self.opt)
        grads = [p.grad for p in self.params if p.grad is not None]
        if self.cfg.grad_clip > 0:
            gnorm = torch.nn.utils.clip_grad_norm_(self.params, self.cfg.grad_clip)
        elif grads:
            gnorm = torch.nn.utils.get_total_norm(grads)
        else:
            gnorm = torch.zeros((), device=self.ctx.device)
        flags = torch.stack([total.detach().float(), (~torch.isfinite(gnorm)).float()])
        flags = all_reduce_sum(flags, self.ctx).cpu()
        loss = float(flags[0]) / self.ctx.world_size
        grad_ok = bool(flags[1] == 0) or self.scaler.is_enabled()  # the fp16 scaler skips such steps itself
        verdict = self.monitor.check(loss, grad_ok)
        if not verdict.ok:
            self.opt.zero_grad(set_to_none=True)
            where = f"last good checkpoint: {self.last_ckpt}" if self.last_ckpt else "no checkpoint was written yet"
            self.log.message(f"stopping: {verdict.reason} at step {step + 1}")
            raise TrainingDiverged(f"training diverged at step {step + 1}: {verdict.reason}; {where}",
                                   step, self.last_ckpt)
        if self.scaler.is_enabled():
            self.scaler.step(self.opt)
            self.scaler.update()
        else:
            self.opt.step()
        self.sched.step()
        self.opt.zero_grad(set_to_none=True)
        return loss, terms, float(gnorm) if math.isfinite(float(gnorm)) else float("nan")

    # -- the loop ------------------------------------------------------------------------------
    def run(self, step: int, opt_state: Mapping[str, Any] | None, stop: int) -> TrainResult:
        with self.stop:
            return self._run(step, opt_state, stop)

    def _run(self, step: int, opt_state: Mapping[str, Any] | None, stop: int) -> TrainResult:
        cfg = self.cfg
        acc: dict[str, Any] = {}
        n_acc, t_log, gnorm_sum = 0, time.perf_counter(), 0.0
        while step < stop:
            sp = phase_at(self.schedule, step)
            if self.phase is None or sp.index != self.phase.index:
                self.enter_phase(sp, opt_state)
                opt_state = None
            first = self.warm_phase != sp.index
            self.warm_phase = sp.index
            t0 = time.perf_counter()
            loss, terms, gnorm = self.train_step(step)
            step += 1
            if not first:  # the first step of a phase or session compiles and warms up: not timed
                self.loop_time += time.perf_counter() - t0
                self.loop_steps += 1
            acc["train/loss"] = acc.get("train/loss", 0.0) + loss  # mean over all processes
            for k, v in terms.items():
                acc[k] = acc.get(k, 0.0) + (v.detach() if isinstance(v, torch.Tensor) else v)
            gnorm_sum += gnorm
            n_acc += 1
            postfix = None
            if step % cfg.log_every == 0 or step == cfg.steps:
                now = time.perf_counter()
                avg = {k: to_float(v) / n_acc for k, v in acc.items()}
                avg["train/grad_norm"] = gnorm_sum / n_acc
                avg["train/lr"] = self.opt.param_groups[0]["lr"]
                avg["train/steps_per_second"] = n_acc / max(now - t_log, 1e-9)
                avg["train/phase"] = float(sp.index)
                self.log.scalars(step, avg)
                self.metrics["train"] = avg
                postfix = {"loss": f"{avg['train/loss']:.4g}"}
                kbps = rate_kbps(avg)
                if kbps is not None:
                    postfix["kbps"] = f"{kbps:.2f}"
                postfix["steps/s"] = f"{avg['train/steps_per_second']:.1f}"
                acc, n_acc, gnorm_sum, t_log = {}, 0, 0.0, now
            self.log.advance(1, postfix)
            if self.tr.val_data is not None and (step % cfg.val_every == 0 or step == cfg.steps):
                t_val = time.perf_counter()
                self.validate(step)
                t_log += time.perf_counter() - t_val
            time_ckpt, time_up = self.clock()
            if step % cfg.ckpt_every == 0 or step == stop or time_ckpt or time_up:
                t_ck = time.perf_counter()
                self.checkpoint(step)
                t_log += time.perf_counter() - t_ck
            if time_up and step < stop:
                why = f"{self.stop.signal} received" if self.stop.signal else f"train.max_seconds={cfg.max_seconds:g} reached"
                self.log.message(f"stopping at step {step} of {cfg.steps}: {why} "
                                 f"(checkpoint {self.last_ckpt.name if self.last_ckpt else 'written'})")
                stopped_by = "signal" if self.stop.signal else "max_seconds"
                break
        else:
            stopped_by = "steps"
        self.log.flush()
        return TrainResult(self.tr.run_dir, step, cfg.steps, self.last_ckpt,
                           self.wall_before + time.perf_counter() - self.t_start,
                           self.loop_steps / self.loop_time if self.loop_time > 0 else 0.0,
                           dict(self.metrics.get("train", {})), dict(self.metrics.get("val", {})), stopped_by,
                           self.stop.signal if stopped_by == "signal" else None)

    def clock(self) -> tuple[bool, bool]:
        """``(checkpoint now, stop now)`` by wall time: ``train.ckpt_every_seconds`` since the last
        checkpoint, ``train.max_seconds`` since ``fit`` started, or a stop signal
        (:class:`~neurocodec.train.stop.StopRequest`).  Under DDP the processes agree
        (either flag set on any process sets it on all), so they checkpoint and stop together."""
        cfg = self.cfg
        signalled = self.stop.signal is not None
        if not (cfg.max_seconds or cfg.ckpt_every_seconds or signalled):
            return False, False
        now = time.perf_counter()
        ck = bool(cfg.ckpt_every_seconds) and now - self.t_last_ckpt >= cfg.ckpt_every_seconds
        up = signalled or (bool(cfg.max_seconds) and now - self.t_fit >= cfg.max_seconds)
        if self.ctx.distributed:
            flags = all_reduce_sum(torch.tensor([float(ck), float(up)], device=self.ctx.device), self.ctx).cpu()
            ck, up = bool(flags[0] > 0), bool(flags[1] > 0)
        return ck, up

    # -- validation -----------------------------------------------------------------------------
    def validate(self, step: int) -> None:
        """Average ``validation_step`` results and quality metrics over the validation batches
        (rank 0 only; the training random streams are saved and restored around it)."""
        if not self.ctx.is_main:
            return
        model, tr = self.model, self.tr
        has_val, has_rec = hasattr(model, "validation_step"), hasattr(model, "reconstruct")
        if not has_val and not has_rec:
            return
        rng = capture_rng()
        self.tr._seed(12345)
        model.eval()
        sums: dict[str, float] = {}
        counts: dict[str, int] = {}
        failures = 0
        n_audio = 0
        per_rank = max(self.cfg.batch_size // self.ctx.world_size, 1)
        try:
            with torch.no_grad():
                for batch in iterate_once(tr.val_data, per_rank, self.cfg.val_batches):
                    batch = batch.to(self.ctx.device)
                    b = batch.shape[0]
                    if has_val:
                        for k, v in dict(model.validation_step(batch)).items():
                            key = k if k.startswith("val/") else f"val/{k}"
                            sums[key] = sums.get(key, 0.0) + to_float(v) * b
                            counts[key] = counts.get(key, 0) + b
                    if has_rec and (tr.quality_metrics or n_audio < self.cfg.audio_samples):
                        rec = model.reconstruct(batch).float().cpu().numpy()
                        ref = batch.float().cpu().numpy()
                        for i in range(b):
                            for name, fn in tr.quality_metrics.items():
                                try:
                                    with warnings.catch_warnings():
                                        warnings.simplefilter("ignore")
                                        val = float(fn(ref[i, 0], rec[i, 0], tr.sample_rate))
                                except Exception:
                                    val = float("nan")
                                if not math.isfinite(val):
                                    failures += 1
                                    continue
                                key = name if name.startswith("val/") else f"val/{name}"
                                sums[key] = sums.get(key, 0.0) + val
                                counts[key] = counts.get(key, 0) + 1
                            if n_audio < self.cfg.audio_samples:
                                if not self.logged_reference:
                                    self.log.audio(step, f"audio/{n_audio}/reference", ref[i, 0], tr.sample_rate)
                                self.log.audio(step, f"audio/{n_audio}/decoded", rec[i, 0], tr.sample_rate)
                                n_audio += 1
        finally:
            model.train()
            restore_rng(rng)
        self.logged_reference = self.logged_reference or n_audio > 0
        if failures:
            self.log.message(f"validation at step {step}: {failures} quality-metric evaluation(s) failed "
                             "or were undefined (too short or silent segments?)")
        avg = {k: sums[k] / counts[k] for k in sums if counts[k]}
        if avg:
            self.log.scalars(step, avg)
            self.metrics["val"] = avg
            self.log.message(f"step {step}: " + ", ".join(f"{k}={v:.4g}" for k, v in sorted(avg.items())))
            self.keep_best(step, avg)

    def keep_best(self, step: int, avg: Mapping[str, float]) -> None:
        """Write ``checkpoints/best.pt`` when this validation improves ``train.keep_best``.

        The best value so far lives in the checkpoints' ``metrics["best"]``, so a resumed run
        compares with it; ``best.pt`` carries rank 0's random streams only (it is for export, and
        resuming goes through the ``step_*`` checkpoints)."""
        key = self.cfg.keep_best
        value = avg.get(key) if key else None
        if value is None or not math.isfinite(value):
            return
        prev = self.metrics.get("best") or {}
        if prev.get("metric") == key:
            better = value > prev["value"] if self.cfg.keep_best_mode == "max" else value < prev["value"]
            if not better:
                return
        self.metrics["best"] = {"metric": key, "value": float(value), "step": int(step)}
        save_checkpoint(self.state(step, [capture_rng()]), checkpoint_dir(self.tr.run_dir) / BEST_NAME)
        self.log.message(f"step {step}: best {key}={value:.4g} so far, kept as checkpoints/{BEST_NAME}")

    # -- checkpoints ------------------------------------------------------------------------
    def checkpoint(self, step: int) -> None:
        """Write ``step_XXXXXXXX.pt`` atomically on rank 0 and keep the newest ``keep_last``."""
        rngs = gather_objects(capture_rng(), self.ctx)  # collective: every rank takes part
        self.t_last_ckpt = time.perf_counter()
        if not self.ctx.is_main:
            return
        self.last_ckpt = save_checkpoint(self.state(step, rngs), checkpoint_path(self.tr.run_dir, step))
        prune_checkpoints(self.tr.run_dir, self.cfg.keep_last)

    def state(self, step: int, rngs: list) -> dict[str, Any]:
        """Everything a checkpoint holds at ``step`` (``rngs``: one random-stream state per rank)."""
        wall = self.wall_before + time.perf_counter() - self.t_start
        meta = {**self.meta, "wall_time_s": wall}
        sp = self.phase
        return {
            "recipe": recipe_to_dict(self.tr.recipe),
            "step": step,
            "total_steps": self.cfg.steps,
            "phase": {"index": sp.index, "name": sp.phase.name},
            "model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "optimizer": self.opt.state_dict(),
            "scheduler": self.sched.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
            "data": self.stream.state_dict(),
            "rng": rngs,
            "monitor": self.monitor.state_dict(),
            "meta": meta,
            "metrics": self.metrics,
        }


def train(recipe: Recipe, run_dir: str | os.PathLike, train_data: Any, val_data: Any = None, **kwargs) -> TrainResult:
    """``Trainer(recipe, run_dir, train_data, val_data, **kwargs).fit()``."""
    return Trainer(recipe, run_dir, train_data, val_data, **kwargs).fit()
