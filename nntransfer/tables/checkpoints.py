"""Checkpoints of running trainings in the database, so any worker can resume them.

A worker that dies (SIGKILL, lost node) leaves its job reserved; when another
worker takes the job over it must find the checkpoints the dead one wrote.  A
folder on the dead worker's node is no use, so :class:`DatabaseCheckpointStore`
keeps one row per checkpoint, keyed by the trained-model table, the hash of the
trained model's key and the checkpoint's name (``<tag>-<epoch>``), with the
bytes in the artifact store like every other artifact.

The rows carry no foreign key to the trained-model table: checkpoints exist
*before* the trained model's row does, and one table serves every
trained-model table of every schema.  ``nntransfer gc`` removes the
checkpoints of keys that are gone.

Order of writes, so that no row ever names a missing file: a checkpoint's
file (named uniquely per write) is written before its row, and a replaced
or deleted row goes before its file.  When a training is stored, its
checkpoint rows are deleted in the same transaction as the result rows
(:meth:`DatabaseCheckpointStore.detach`) and the files only after the
commit (:meth:`DatabaseCheckpointStore.remove_files`): a commit that fails
leaves rows and files as they were, so a retry resumes.
"""

from __future__ import annotations

import contextlib
import logging

from ..db import import_datajoint
from ..hashing import config_hash
from ..trainer.checkpoints import CheckpointError, CheckpointStore
from .artifacts import ArtifactError, artifact_definition, new_attempt
from .fabrik import schema
from .restrictions import SafeRestriction

dj = import_datajoint()
log = logging.getLogger(__name__)


@schema
class Checkpoint(SafeRestriction, dj.Manual):
    definition = (
        """
    # checkpoints of trainings in progress (see nntransfer.trainer.checkpoints)
    target: varchar(255)           # full name of the trained-model table
    key_hash: char(32)             # hash of the primary key of the trained model
    checkpoint_name: varchar(64)   # <tag>-<epoch>
    ---
    epoch: int32
    trained_key: json              # primary key of the trained model, for people reading the table
    """
        + artifact_definition("checkpoint", "torch.save of the checkpoint")
        + "checkpoint_ts = CURRENT_TIMESTAMP: datetime\n"
    )


def _primary(table, key: dict) -> dict:
    missing = [name for name in table.primary_key if name not in key]
    if missing:
        raise CheckpointError(f"the key {key} lacks {missing}; checkpoints need the full key of {table.table_name}.")
    return {name: key[name] for name in table.primary_key}


class DatabaseCheckpointStore(CheckpointStore):
    """The checkpoints of one trained model (``table`` and ``key``), in the database."""

    def __init__(self, table, key: dict):
        from .trained import artifact_store

        primary = _primary(table, key)
        self.restriction = {"target": table.full_table_name, "key_hash": config_hash(primary)}
        self.trained_key = primary
        self.folder = f"{table.database}/checkpoints/{table.table_name.strip('_#~')}/{self.restriction['key_hash']}"
        self.artifacts = artifact_store()
        self.holder_check = None  # called in the write's transaction: raises when the job was taken over

    def _put(self, name, data):
        ref = self.artifacts.put("checkpoint", f"{self.folder}/{name}-{new_attempt()}.pt", data)
        row = {
            **self.restriction,
            "checkpoint_name": name,
            "epoch": int(name.rsplit("-", 1)[1]),
            "trained_key": self.trained_key,
            **ref,
        }
        entry = Checkpoint & {**self.restriction, "checkpoint_name": name}
        try:
            with _transaction(Checkpoint.connection):
                if self.holder_check is not None:
                    self.holder_check()
                replaced = list(entry.to_arrays("checkpoint"))
                entry.delete_quick()
                Checkpoint.insert1(row)
        except BaseException:
            self.artifacts.remove(ref["checkpoint"], self.folder)
            raise
        self.remove_files(replaced)

    def _get(self, name):
        row = (Checkpoint & {**self.restriction, "checkpoint_name": name}).fetch1()
        return self.artifacts.get(row, "checkpoint", self.folder)

    def _delete(self, name):
        entry = Checkpoint & {**self.restriction, "checkpoint_name": name}
        paths = list(entry.to_arrays("checkpoint"))
        entry.delete_quick()
        self.remove_files(paths)

    def _names(self):
        return list((Checkpoint & self.restriction).to_arrays("checkpoint_name"))

    def detach(self) -> list:
        """Delete this training's checkpoint rows (in the caller's transaction); return their files' paths.

        The files stay until :meth:`remove_files` is called after the commit,
        so a rolled-back transaction leaves every row with its file.
        """
        entries = Checkpoint & self.restriction
        paths = list(entries.to_arrays("checkpoint"))
        if paths:  # most short trainings wrote none
            entries.delete_quick()
        return paths

    def remove_files(self, paths) -> None:
        """Delete checkpoint files whose rows are gone; a path that is not this training's is left alone."""
        for path in paths:
            try:
                self.artifacts.remove(path, self.folder)
            except ArtifactError as error:  # the rows are gone already; a file left behind is for `nntransfer gc`
                log.warning("%s", error)


def _transaction(connection):
    """A transaction, or nothing new when one is open (DataJoint does not nest them)."""
    return contextlib.nullcontext() if connection.in_transaction else connection.transaction
