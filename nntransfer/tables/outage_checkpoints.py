"""A training's checkpoints while the database is away: kept in a local folder until it is back.

The database checkpoint store (:mod:`.checkpoints`) writes a row per
checkpoint; with the database down, that write fails and, without this
module, the whole training with it.  :class:`OutageProofCheckpoints` wraps
it for the training callback: a checkpoint the database cannot take is
written to a folder of this machine instead
(``NNTRANSFER_HOME/kept-checkpoints/<schema>/<table>/<key hash>/``), the
training goes on, and the next checkpoint goes to the database again once it
answers.  Reading picks the newest checkpoint of either place, so an attempt
that resumes on this machine after an outage longer than the reconnect bound
(see :mod:`.reconnect`) starts from the local one instead of from scratch.
When the result is stored the local copies are removed (:func:`discard`).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from ..hashing import config_hash
from ..settings import load_settings
from ..trainer.checkpoints import CheckpointStore, LocalCheckpointStore
from .reconnect import is_connection_error, try_reconnect

log = logging.getLogger(__name__)


def local_folder(table, key: dict) -> Path:
    """Where the checkpoints of ``key`` in ``table`` are kept while the database is away."""
    primary = {name: key[name] for name in table.primary_key}
    return (load_settings().home / "kept-checkpoints" / table.database / table.table_name.strip("_#~")
            / config_hash(primary))


def discard(table, key: dict) -> None:
    """Remove the local checkpoints of ``key`` (its result is stored)."""
    folder = local_folder(table, key)
    if folder.is_dir():
        shutil.rmtree(folder, ignore_errors=True)


class OutageProofCheckpoints(CheckpointStore):
    """The database checkpoints of one training, with a local folder for what the database cannot take."""

    def __init__(self, database_store, folder: Path, connection):
        self.database = database_store
        self.folder = Path(folder)
        self.connection = connection
        self._down = False

    @property
    def _local(self) -> LocalCheckpointStore | None:
        if self.folder.is_dir():
            return LocalCheckpointStore(self.folder)
        return None

    def _database(self, action, *args):
        """Run ``action`` on the database store; None (and remember it) when the database is away."""
        if self._down:
            if not try_reconnect(self.connection):
                return None
            self._down = False
            log.warning("the database is back: checkpoints go to it again")
        try:
            return action(*args)
        except Exception as error:
            if not is_connection_error(error):
                raise
            self._down = True
            log.warning("the database cannot take a checkpoint (%s); it is kept in %s until the database is back",
                        type(error).__name__, self.folder)
            return None

    def _put(self, name, data):
        if self._database(lambda: self.database._put(name, data) or True) is None:
            LocalCheckpointStore(self.folder)._put(name, data)
        elif self._local is not None:
            self._local._delete(name)  # the database holds this one now

    def _get(self, name):
        local = self._local
        if local is not None and name in local._names():
            return local._get(name)
        return self.database._get(name)

    def _delete(self, name):
        local = self._local
        if local is not None:
            local._delete(name)
        self._database(self.database._delete, name)

    def _names(self):
        local = self._local
        names = set(local._names()) if local is not None else set()
        stored = self._database(self.database._names)
        return sorted(names | set(stored or ()))
