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


@pytest.fixture
def embedded_home():
    """A fresh NNTRANSFER_HOME for an embedded server, removed afterwards.

    Made with mkdtemp in the temporary folder, not below pytest's tmp_path:
    run as root, the server runs as another user, which must be able to
    enter the folders above its home, and pytest keeps its own folder 0700.
    """
    import shutil
    import tempfile
    from pathlib import Path

    home = Path(tempfile.mkdtemp(prefix="nnt-home-"))
    yield home
    shutil.rmtree(home, ignore_errors=True)
