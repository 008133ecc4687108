"""A worker survives its database going away: the server stopped and started while it trains.

Each test starts a server of its own (see :mod:`own_servers`): the embedded
PostgreSQL, a PostgreSQL on a TCP port and a MariaDB, so they run once, in
the embedded session, whatever ``NNTRANSFER_TEST_SERVER`` says.  The worker
is a real ``nntransfer worker`` process; the test reads the outcome with the
command line's JSON output.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from own_servers import OwnServer, mariadb_available

pytestmark = pytest.mark.slow

RECIPE = '''
from nntransfer.configs import Experiment, config_class_for

Digits = config_class_for("nntransfer.datasets.digits.digits_dataset_fn", "dataset")
Mlp = config_class_for("nntransfer.models.mlp.mlp_model_fn", "model")
Slow = config_class_for("itest_operations.slow_trainer", "trainer")
experiments = {"outage": Experiment(Digits(batch_size=64), Mlp(hidden_sizes=[16]),
                                    Slow(epochs=3, lr=0.01, batch_sleep=0.1,
                                         modules={"checkpointing": {"save_best": False}}), seed=5)}
'''


@pytest.fixture
def own_only(backend_name):
    if backend_name != "embedded":
        pytest.skip("starts servers of its own: runs once, in the embedded session")


@pytest.fixture
def server_folder():
    """A folder the server's user may enter (as root the server runs as another user), removed at the end."""
    folder = Path(tempfile.mkdtemp(prefix="nnt-own-"))
    os.chmod(folder, 0o711)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


class Worker:
    """An ``nntransfer worker`` process whose output is collected line by line as it comes."""

    def __init__(self, recipe: Path, env: dict, *extra: str):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "nntransfer.cli", "worker", str(recipe), "--poll", "0.2", *extra],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.process.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for_line(self, text: str, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in line for line in self.lines):
                return
            if self.process.poll() is not None:
                self._reader.join(5)
                raise AssertionError(f"the worker ended before printing {text!r}:\n{self.output}")
            time.sleep(0.1)
        self.process.kill()
        raise AssertionError(f"no {text!r} within {timeout} s:\n{self.output}")

    def finish(self, timeout: float = 300) -> int:
        code = self.process.wait(timeout=timeout)
        self._reader.join(10)
        return code


def cli_json(env: dict, *arguments: str):
    result = subprocess.run([sys.executable, "-m", "nntransfer.cli", *arguments, "--format", "json"], env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("kind", [
    "embedded", "postgresql",
    pytest.param("mariadb", marks=pytest.mark.skipif(not mariadb_available(), reason="no mariadbd here")),
])
def test_a_worker_survives_a_database_restart_and_stores_its_result(own_only, tmp_path, server_folder, kind):
    server = OwnServer(kind, server_folder).create()
    env = server.env(f"nnt_outage_{os.getpid()}_{secrets.token_hex(3)}")
    recipe = tmp_path / "outage.py"
    recipe.write_text(RECIPE)
    try:
        worker = Worker(recipe, env, "--reconnect-timeout", "240")
        worker.wait_for_line("epoch 1/3")
        server.stop()  # the training goes on; its checkpoints are kept locally meanwhile
        time.sleep(6)
        server.start()
        assert worker.finish() == 0, worker.output
        assert "trained 1 steps, 0 errors" in worker.output, worker.output
        assert "Traceback" not in worker.output, worker.output
        status = cli_json(env, "status", str(recipe))
        assert status["total"]["done"] == 1 and status["total"]["error"] == 0 and status["running"] == []
        assert not (server.home / "kept-checkpoints").exists() or not any((server.home / "kept-checkpoints").rglob("*.pt"))
    finally:
        server.stop()


def test_past_the_reconnect_bound_the_state_is_kept_locally_and_the_next_worker_resumes(own_only, tmp_path,
                                                                                       server_folder):
    server = OwnServer("embedded", server_folder).create()
    env = server.env(f"nnt_outage_{os.getpid()}_{secrets.token_hex(3)}")
    recipe = tmp_path / "outage.py"
    recipe.write_text(RECIPE)
    try:
        worker = Worker(recipe, env, "--reconnect-timeout", "2")
        worker.wait_for_line("epoch 1/3")
        server.stop()
        assert worker.finish() == 3, worker.output  # 3: the database does not answer
        assert "did not answer for 2 s" in worker.output and "Traceback" not in worker.output, worker.output
        kept = list((server.home / "kept-checkpoints").rglob("last-*.pt"))
        assert kept, worker.output  # the trained state, on this machine

        server.start()
        # the first worker could not give its job back while the server was down:
        # the next one takes it over once its heartbeat is older than the orphan timeout
        again = Worker(recipe, env, "--orphan-timeout", "3")
        assert again.finish() == 0, again.output
        assert "trained 1 steps, 0 errors" in again.output
        assert "epoch 1/3" not in again.output, again.output  # resumed after the kept checkpoint, not from scratch
        assert "resumed from the checkpoint written after epoch 3" in again.output
        assert not any(path.exists() for path in kept)
        assert cli_json(env, "status", str(recipe))["total"]["done"] == 1
    finally:
        server.stop()
