"""`nntransfer db start|status|url|stop` on a separate embedded server."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("NNTRANSFER_TEST_SERVER")), reason="the embedded server is tested once, not per server"
)


def cli(*args, home):
    env = dict(os.environ, NNTRANSFER_HOME=str(home), NNTRANSFER_DB="embedded")
    return subprocess.run([sys.executable, "-m", "nntransfer.cli", *args], env=env, capture_output=True, text=True, timeout=120)


def test_db_lifecycle(embedded_home):
    home = embedded_home
    started = cli("db", "start", home=home)
    assert started.returncode == 0, started.stderr
    try:
        status = cli("db", "status", home=home)
        assert status.returncode == 0 and "running" in status.stdout
        url = cli("db", "url", home=home).stdout.strip()
        assert url.startswith("postgresql://postgres@/postgres?host=")
        again = cli("db", "start", home=home)  # a second start finds the running server
        assert again.returncode == 0 and status.stdout.split()[2] in again.stdout
    finally:
        stopped = cli("db", "stop", home=home)
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    assert cli("db", "status", home=home).returncode == 3
    assert "was not running" in cli("db", "stop", home=home).stdout


def test_simultaneous_first_uses_start_one_server(embedded_home):
    """Workers that all start at once on a fresh machine share one server."""
    home = embedded_home
    code = (
        "from pathlib import Path; from nntransfer.db import embedded; "
        f"print(embedded.start(Path({str(home / 'pgdata')!r})).pid)"
    )
    env = dict(os.environ, NNTRANSFER_HOME=str(home), NNTRANSFER_DB="embedded")
    processes = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for _ in range(3)]
    try:
        outputs = [process.communicate(timeout=180) for process in processes]
        assert all(process.returncode == 0 for process in processes), [err for _, err in outputs]
        assert len({out.strip() for out, _ in outputs}) == 1
    finally:
        cli("db", "stop", home=home)
