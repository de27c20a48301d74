"""Switching a module's training mode for a while."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from torch import nn

__all__ = ["eval_mode"]


@contextmanager
def eval_mode(module: nn.Module) -> Iterator[nn.Module]:
    """Run the block with ``module`` in eval mode (hard quantization, no dropout), then put back
    the mode it had, also when the block raises."""
    was = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was)
