"""Connecting to the experiment database.

``connect()`` is the single place that turns :mod:`nntransfer.settings` into a
DataJoint connection: in embedded mode it starts (or finds) the local
PostgreSQL server and points DataJoint at its socket; in server mode it uses
DataJoint's own settings untouched.  It also makes sure the object store that
holds artifacts is configured.  Nothing here runs at import time.
"""

from __future__ import annotations

import logging
import os
import warnings

from ..errors import DatabaseError, DatabaseUnreachable
from ..logs import adopt_datajoint
from ..settings import Settings, load_settings, note_embedded_host

log = logging.getLogger(__name__)

# DataJoint 2 warns on every connection to MariaDB that its support is best-effort.
# nntransfer is tested on MariaDB; a warning per connection (workers open one per
# job for their heartbeat) would bury the messages that matter, so it is not shown.
warnings.filterwarnings("ignore", message="MariaDB is not officially supported by DataJoint", category=UserWarning)

STORE_MODES = {"private": (0o700, 0o600), "group": (0o2770, 0o660)}
"""Folder and file modes of a folder store, by ``NNTRANSFER_STORE_MODE``."""


def store_modes() -> tuple[int, int]:
    """``(folder mode, file mode)`` for what this process creates in a folder store.

    ``NNTRANSFER_STORE_MODE=private`` (the default): only the owner reads
    the store.  ``group``: the owner's group reads and writes it too, and
    new folders pass the group on (setgid), for a store that several
    accounts of one group share.
    """
    mode = os.environ.get("NNTRANSFER_STORE_MODE", "private").strip().lower() or "private"
    if mode not in STORE_MODES:
        raise DatabaseError(
            f"NNTRANSFER_STORE_MODE={mode!r} is not a mode; use 'private' (only you can read the store, the "
            "default) or 'group' (your group can read and write it, for a store shared by several accounts)."
        )
    return STORE_MODES[mode]

_announced: set = set()


def import_datajoint():
    """Import datajoint without its 'no datajoint.json found' warning.

    Working without a config file is nntransfer's normal case (embedded mode),
    so the warning would only confuse users.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="No datajoint.json found")
        import datajoint

    adopt_datajoint()  # the command line's one log handler instead of DataJoint's own (see nntransfer.logs)
    return datajoint


def _configure_embedded(dj, settings: Settings) -> None:
    from . import embedded

    info = embedded.start(settings.pgdata)
    dj.config["database.backend"] = "postgresql"
    dj.config["database.host"] = str(info.socket_dir)
    note_embedded_host(str(info.socket_dir))
    dj.config["database.port"] = info.port
    dj.config["database.user"] = "postgres"
    dj.config["database.password"] = ""


def _configure_store(dj, settings: Settings) -> None:
    if settings.store in dj.config.stores:
        return
    if not settings.store_location.is_dir():
        folder_mode = store_modes()[0]
        try:
            settings.store_location.mkdir(mode=folder_mode, parents=True, exist_ok=True)
            os.chmod(settings.store_location, folder_mode)  # mkdir's mode is cut by the umask
        except OSError as error:
            raise DatabaseError(
                f"cannot create the artifact store {settings.store_location}: {error.strerror or error}"
            ) from None
    if settings.mode == "server":
        log.warning(
            "No DataJoint store %r is configured; artifacts go to the local folder %s. "
            "Workers on other machines will not see them: configure dj.config['stores'][%r] "
            "(a shared folder or S3) for a cluster.",
            settings.store, settings.store_location, settings.store,
        )
    # added to the stores the user configured, which their own tables may use
    dj.config["stores"] = {
        **dj.config.stores,
        settings.store: {"protocol": "file", "location": str(settings.store_location)},
    }


def describe_target(dj) -> str:
    """Where DataJoint will connect, for error messages (never the password)."""
    db = dj.config.database
    return f"{db.backend} server at {db.host}:{db.port} as user {db.user!r}"


def _announce(dj, settings: Settings) -> None:
    """Log once per process which database is used and why, so data never goes somewhere unnoticed."""
    if settings.mode == "embedded":
        target = f"the embedded PostgreSQL in {settings.pgdata}"
        why = f"{settings.reason}; home from {settings.home_reason}" if settings.home_reason else settings.reason
    else:
        target, why = describe_target(dj), settings.reason
    if target in _announced:
        return
    _announced.add(target)
    log.info("nntransfer uses %s (%s)", target, why or settings.mode)


def connect(settings: Settings | None = None):
    """Return DataJoint's connection for the configured database.

    Raises :class:`DatabaseError` naming host and backend when the server
    cannot be reached, instead of a stack of driver errors.
    """
    settings = settings or load_settings()
    dj = import_datajoint()
    if settings.mode == "embedded":
        _configure_embedded(dj, settings)
    elif dj.config.database.password is None:
        dj.config["database.password"] = ""
    _configure_store(dj, settings)
    _announce(dj, settings)
    try:
        connection = dj.conn()
        connection.ping()
        _remember_user(connection)
    except Exception as error:  # driver errors differ per backend; all mean "unreachable"
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DatabaseUnreachable(
            f"Cannot connect to the {describe_target(dj)}: {first_line}. "
            "Check that the server runs and that DJ_HOST, DJ_PORT, DJ_USER, DJ_PASS and DJ_BACKEND "
            "(or datajoint.json) are right; unset DJ_HOST to use the embedded database."
        ) from None
    return connection


def _remember_user(connection) -> None:
    """Ask the server for the connection's user once: DataJoint asks at every job reservation.

    The user of a login does not change while the process runs (a
    reconnection logs in as the same user), so the answer is kept on this
    connection object.
    """
    if "get_user" not in vars(connection):
        user = connection.get_user()
        connection.get_user = lambda: user
