"""Progress bar (tqdm), TensorBoard event files and a JSON-lines metrics log for rank 0.

Scalars go to ``RUN_DIR/tb`` (TensorBoard, when installed) and ``RUN_DIR/metrics.jsonl`` (one
``{"step": ..., key: value}`` object per line); audio samples to TensorBoard only.  On other ranks
every method is a no-op.
"""

from __future__ import annotations

import json
import math
import sys
import warnings
from pathlib import Path
from typing import Any, Mapping

import numpy as np


class RunLogger:
    """Rank-0 sink for progress, scalars, audio and messages."""

    def __init__(self, run_dir: str | Path, *, enabled: bool, total: int, initial: int = 0,
                 progress: bool = True, tensorboard: bool = True):
        self.enabled = enabled
        self.run_dir = Path(run_dir)
        self._bar = None
        self._tb = None
        self._jsonl = None
        if not enabled:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._jsonl = open(self.run_dir / "metrics.jsonl", "a", encoding="utf-8")
        if tensorboard:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    from torch.utils.tensorboard import SummaryWriter
                self._tb = SummaryWriter(log_dir=str(self.run_dir / "tb"), purge_step=initial or None)
            except ImportError:
                self.message("tensorboard is not installed (pip install tensorboard); logging to metrics.jsonl only")
        if progress:
            from tqdm import tqdm

            self._bar = tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True, file=sys.stderr,
                             smoothing=0.1)

    def scalars(self, step: int, values: Mapping[str, float]) -> None:
        if not self.enabled or not values:
            return
        clean = {k: float(v) for k, v in values.items()}
        if self._tb is not None:
            for k, v in clean.items():
                self._tb.add_scalar(k, v, step)
        row = {"step": step, **{k: (v if math.isfinite(v) else str(v)) for k, v in clean.items()}}
        self._jsonl.write(json.dumps(row) + "\n")
        self._jsonl.flush()

    def audio(self, step: int, tag: str, wav: Any, sample_rate: int) -> None:
        if not self.enabled or self._tb is None:
            return
        a = np.clip(np.asarray(wav, dtype=np.float32).reshape(-1), -1.0, 1.0)
        self._tb.add_audio(tag, a, step, sample_rate=sample_rate)

    def text(self, tag: str, text: str) -> None:
        if self.enabled and self._tb is not None:
            self._tb.add_text(tag, text, 0)

    def advance(self, n: int = 1, postfix: Mapping[str, str] | None = None) -> None:
        if self._bar is not None:
            self._bar.update(n)
            if postfix:
                self._bar.set_postfix(postfix, refresh=False)

    def message(self, msg: str) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.write(msg, file=sys.stderr)
        else:
            print(msg, file=sys.stderr)

    def flush(self) -> None:
        if self._tb is not None:
            self._tb.flush()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if self._tb is not None:
            self._tb.close()
            self._tb = None
        if self._jsonl is not None:
            self._jsonl.close()
            self._jsonl = None
