"""Artifacts (state_dicts, checkpoints, transfer data) in a DataJoint store.

A row keeps only the artifact's path, size and SHA-256; the bytes live in the
store that ``dj.config["stores"][<name>]`` describes (a folder, a shared file
system or S3).  This routes around two measured problems of DataJoint 2.3.5:
``<blob@store>`` / ``<attach@store>`` fail on MariaDB ("dict can not be used as
parameter"), and ``<blob@store>`` costs about 60 ms per 1 MB array.  Writing
bytes through DataJoint's storage backend works on every database backend and
costs about what writing the file costs.

Paths are deterministic (``<schema>/<table>/<key hash>/<name>``), so a retried
job overwrites what a failed attempt left instead of orphaning it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property

from ..db import import_datajoint
from ..errors import DatabaseError
from ..hashing import config_hash
from ..settings import load_settings


def artifact_definition(name: str, comment: str) -> str:
    """Definition lines of an artifact reference named ``name``."""
    return (
        f"{name}: varchar(255)  # {comment}: path in the object store\n"
        f"{name}_size: int64  # bytes\n"
        f"{name}_sha256: char(64)  # checksum, verified on load\n"
    )


@dataclass
class ArtifactStore:
    """Read and write artifact bytes in the configured DataJoint store."""

    name: str

    @classmethod
    def default(cls) -> "ArtifactStore":
        return cls(load_settings().store)

    @cached_property
    def backend(self):
        dj = import_datajoint()
        from datajoint.storage import get_storage_backend

        return get_storage_backend(dj.config.get_store_spec(self.name))

    @staticmethod
    def path_for(table, key: dict, name: str) -> str:
        primary = {attr: key[attr] for attr in table.primary_key}
        return f"{table.database}/{table.table_name.strip('_#')}/{config_hash(primary)}/{name}"

    def put(self, name: str, path: str, data: bytes) -> dict:
        """Write ``data``; return the row fields that reference it."""
        self.backend.put_buffer(data, path)
        return {name: path, f"{name}_size": len(data), f"{name}_sha256": hashlib.sha256(data).hexdigest()}

    def get(self, row: dict, name: str) -> bytes:
        """Read the artifact ``name`` that ``row`` references and check its checksum."""
        data = self.backend.get_buffer(row[name])
        if hashlib.sha256(data).hexdigest() != row[f"{name}_sha256"]:
            raise DatabaseError(
                f"Artifact {row[name]!r} in store {self.name!r} does not match its checksum; "
                "it was changed or truncated after it was written. Delete the row and populate again."
            )
        return data

    def remove(self, path: str) -> None:
        backend = self.backend
        if backend.exists(path):
            backend.remove(path)
