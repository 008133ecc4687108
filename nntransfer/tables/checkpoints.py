"""Checkpoints of running trainings in the database, so any worker can resume them.

A worker that dies (SIGKILL, lost node) leaves its job reserved; when another
worker takes the job over it must find the checkpoints the dead one wrote.  A
folder on the dead worker's node is no use, so :class:`DatabaseCheckpointStore`
keeps one row per checkpoint, keyed by the trained-model table, the hash of the
trained model's key and the checkpoint's name (``<tag>-<epoch>``), with the
bytes in the artifact store like every other artifact.

The rows carry no foreign key to the trained-model table: checkpoints exist
*before* the trained model's row does, and one table serves every
trained-model table of every schema.
"""

from __future__ import annotations

from ..db import import_datajoint
from ..hashing import config_hash
from ..trainer.checkpoints import CheckpointError, CheckpointStore
from .artifacts import artifact_definition
from .fabrik import schema

dj = import_datajoint()


@schema
class Checkpoint(dj.Manual):
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

    def _put(self, name, data):
        ref = self.artifacts.put("checkpoint", f"{self.folder}/{name}.pt", data)
        row = {
            **self.restriction,
            "checkpoint_name": name,
            "epoch": int(name.rsplit("-", 1)[1]),
            "trained_key": self.trained_key,
            **ref,
        }
        (Checkpoint & {**self.restriction, "checkpoint_name": name}).delete_quick()
        Checkpoint.insert1(row)

    def _get(self, name):
        row = (Checkpoint & {**self.restriction, "checkpoint_name": name}).fetch1()
        return self.artifacts.get(row, "checkpoint")

    def _delete(self, name):
        rows = (Checkpoint & {**self.restriction, "checkpoint_name": name}).to_dicts()
        for row in rows:
            self.artifacts.remove(row["checkpoint"])
        (Checkpoint & {**self.restriction, "checkpoint_name": name}).delete_quick()

    def _names(self):
        return list((Checkpoint & self.restriction).to_arrays("checkpoint_name"))
