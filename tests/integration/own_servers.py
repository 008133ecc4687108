"""Database servers the outage tests start, stop and start again themselves, on ports of their own.

Never the machine's shared servers: an embedded PostgreSQL in a temporary
home, a PostgreSQL (the embedded wheel's programs) listening on a free TCP
port of 127.0.0.1, and a MariaDB (the system's ``mariadbd``, when installed)
on another free port.  Each writes only into its temporary folder.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

KINDS = ("embedded", "postgresql", "mariadb")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def mariadb_available() -> bool:
    return shutil.which("mariadbd") is not None and shutil.which("mariadb-install-db") is not None


class OwnServer:
    """One server of ``kind`` with its data under ``folder``; ``env()`` points a worker process at it."""

    def __init__(self, kind: str, folder: Path):
        self.kind = kind
        self.folder = Path(folder)
        self.home = self.folder / "home"
        self.port = None if kind == "embedded" else free_port()
        self._process = None

    # -- lifecycle --------------------------------------------------------------------------------
    def create(self) -> "OwnServer":
        if self.kind == "postgresql":
            from nntransfer.db import embedded

            user = embedded._server_user()
            embedded._make_home(self.home, user)
            embedded._initialise(self.pgdata, user)
        elif self.kind == "mariadb":
            self.data.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run(["mariadb-install-db", "--no-defaults", f"--datadir={self.data}", "--user=root",
                            "--auth-root-authentication-method=normal", "--skip-test-db"],
                           check=True, capture_output=True, timeout=300)
        return self.start()

    @property
    def pgdata(self) -> Path:
        return self.home / "pgdata"

    @property
    def data(self) -> Path:
        return self.folder / "mariadb"

    def start(self) -> "OwnServer":
        if self.kind == "embedded":
            from nntransfer.db import embedded

            embedded.start(self.pgdata)
        elif self.kind == "postgresql":
            from nntransfer.db import embedded

            user = embedded._server_user()
            pg_ctl = embedded._wheel()._commands.POSTGRES_BIN_PATH / "pg_ctl"
            embedded._run([str(pg_ctl), "-D", str(self.pgdata), "-w", "-l", str(self.pgdata / "log"), "-o",
                           f"-h 127.0.0.1 -p {self.port} -k {self.pgdata}", "start"], user,
                          "starting the test's PostgreSQL", cwd=self.pgdata, timeout=120)
        else:
            self._process = subprocess.Popen(
                ["mariadbd", "--no-defaults", f"--datadir={self.data}", f"--port={self.port}",
                 "--bind-address=127.0.0.1", f"--socket={self.folder / 'mariadb.sock'}", "--user=root",
                 f"--pid-file={self.folder / 'mariadb.pid'}", f"--log-error={self.folder / 'mariadb.log'}"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self._wait_for_port()
        return self

    def stop(self) -> None:
        if self.kind in ("embedded", "postgresql"):
            from nntransfer.db import embedded

            embedded.stop(self.pgdata)
        elif self._process is not None:
            self._process.send_signal(signal.SIGTERM)
            self._process.wait(timeout=120)
            self._process = None

    def _wait_for_port(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"mariadbd ended; see {self.folder / 'mariadb.log'}")
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"mariadbd did not listen on port {self.port} within {timeout} s")

    # -- clients ------------------------------------------------------------------------------------
    def env(self, schema: str) -> dict:
        """The environment of a process that uses this server (and ``home`` for its local store)."""
        env = {name: value for name, value in os.environ.items() if not name.startswith("DJ_")}
        env.update(NNTRANSFER_HOME=str(self.home), NNTRANSFER_SCHEMA=schema, OMP_NUM_THREADS="1",
                   MKL_NUM_THREADS="1")
        if self.kind == "embedded":
            env["NNTRANSFER_DB"] = "embedded"
        else:
            env.update(NNTRANSFER_DB="server", DJ_HOST="127.0.0.1", DJ_PORT=str(self.port),
                       DJ_USER="postgres" if self.kind == "postgresql" else "root", DJ_PASS="",
                       DJ_BACKEND="postgresql" if self.kind == "postgresql" else "mysql")
        return env
