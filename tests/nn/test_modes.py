"""nn.modes.eval_mode: eval inside the block, the previous mode after it (also on errors)."""

from __future__ import annotations

import pytest
from torch import nn

from neurocodec.nn.modes import eval_mode


@pytest.mark.parametrize("training", [True, False])
def test_eval_mode_restores_the_previous_mode(training):
    m = nn.Sequential(nn.Linear(2, 2), nn.Dropout())
    m.train(training)
    with eval_mode(m) as inner:
        assert inner is m and not m.training and not m[1].training
    assert m.training == training and m[1].training == training


def test_eval_mode_restores_the_mode_when_the_block_raises():
    m = nn.Linear(2, 2).train()
    with pytest.raises(RuntimeError, match="boom"):
        with eval_mode(m):
            raise RuntimeError("boom")
    assert m.training
