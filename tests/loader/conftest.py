"""Fixtures for the loader tests."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    """Run these small models on one thread.

    On a shared 2-core machine, two OpenMP threads per process make tiny matmuls 10-50x slower
    (the threads wait on each other while other processes hold the cores).
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
