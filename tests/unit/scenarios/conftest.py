"""Scenario tests train tiny models end to end on digits; one thread keeps them fast and repeatable."""

import pytest


@pytest.fixture(autouse=True)
def _one_thread(single_thread):
    """Every scenario test runs on one thread (see tests/conftest.py)."""
