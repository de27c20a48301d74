"""Errors raised by the training stack.

Both derive from :class:`neurocodec.errors.UserError`, so the CLI prints them as one line and
exits with status 2.
"""

from __future__ import annotations

from ..errors import UserError


class RecipeError(UserError):
    """A recipe name, override (``--set key=value``), YAML file or run directory is invalid."""


class TrainingDiverged(UserError):
    """The loss became non-finite or exploded; the run stopped and its last good checkpoint is kept.

    ``step`` is the step that failed (0-based), ``checkpoint`` the last checkpoint written before it
    (``None`` when none was written yet)."""

    def __init__(self, message: str, step: int, checkpoint=None):
        super().__init__(message)
        self.step = step
        self.checkpoint = checkpoint
