"""Fixtures shared by the codec tests."""

import pytest
import torch


@pytest.fixture(autouse=True)
def one_torch_thread():
    """The learned-codec tests run on one torch thread (faster on the oversubscribed 2-core CI
    machine, and the bitstreams must not depend on it); the previous count is restored."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
