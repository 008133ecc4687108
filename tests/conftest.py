"""Fixtures shared by several test folders."""

import pytest
import torch


@pytest.fixture
def single_thread():
    """Tiny models train fastest and repeatably on one thread; several would fight over a small CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
