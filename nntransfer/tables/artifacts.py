"""Artifacts (state_dicts, checkpoints, transfer data) in a DataJoint store.

A row keeps only the artifact's path, size and SHA-256; the bytes live in the
store that ``dj.config["stores"][<name>]`` describes (a folder, a shared file
system or S3).  This routes around two measured problems of DataJoint 2.3.5:
``<blob@store>`` / ``<attach@store>`` fail on MariaDB ("dict can not be used as
parameter"), and ``<blob@store>`` costs about 60 ms per 1 MB array.  Writing
bytes through DataJoint's storage backend works on every database backend and
costs about what writing the file costs.

Where an artifact lives is derived from its row's key: the folder
``<schema>/<table>/<key hash>/`` and a file name unique to the attempt that
wrote it (``model_state-<attempt>.pt``).  Two attempts at one key (a worker
whose job was taken over while it was still training, and the worker that
took it) therefore never write, nor delete, each other's files: an attempt
removes only what it wrote.  Reads and deletions check that a row's path is
exactly of that form (relative, inside the key's folder, no ``..``); a row
that names anything else is refused and its file is never deleted.

Files in a folder store are written to a temporary name and renamed, so a
reader never sees half a file, and are private to their owner (files 0600,
folders 0700) unless ``NNTRANSFER_STORE_MODE=group`` asks for a store shared
by a group (0660 and 0770 with the group inherited).  Errors of the file
system or the store name the path.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import secrets
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path, PurePosixPath

from ..db import import_datajoint, store_modes
from ..errors import DatabaseError
from ..hashing import config_hash
from ..settings import load_settings

log = logging.getLogger(__name__)

ARTIFACT_FILE = re.compile(r"[a-z][a-z0-9_]*(-[0-9]{6,})?(-[0-9a-f]{16})?\.(pt|npz)")
"""Names an artifact file may have: ``<name>[-<epoch>][-<attempt>].<pt|npz>``."""



class ArtifactError(DatabaseError):
    """An artifact cannot be written, found or read, or its row names a path that is not its own."""


def new_attempt() -> str:
    """A token naming one attempt's files (16 hex characters)."""
    return secrets.token_hex(8)


def check_path(path, folder: str) -> str:
    """Return ``path`` if it is an artifact file directly inside ``folder``; an ArtifactError otherwise.

    ``folder`` is the relative folder that the row's key gives.  Anything
    else (absolute, ``..``, another key's folder, an odd file name) is what a
    crafted or corrupted row would name to make a load read, or a cleanup
    delete, a file that is not its own.
    """
    text = path if isinstance(path, str) else ""
    pure = PurePosixPath(text)
    if (not text or "\\" in text or "\x00" in text or pure.is_absolute() or ".." in pure.parts
            or str(pure.parent) != folder or not ARTIFACT_FILE.fullmatch(pure.name)):
        raise ArtifactError(
            f"the row names the artifact path {path!r}, but its artifacts live in {folder + '/'!r} under names "
            "such as 'model_state-<attempt>.pt'; the row was edited or crafted. It is not read and its path "
            "is not deleted; delete the row and train the key again."
        )
    return text


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

    @property
    def folder_protocol(self) -> bool:
        return self.spec.get("protocol", "file") == "file"

    @cached_property
    def spec(self) -> dict:
        return import_datajoint().config.get_store_spec(self.name)

    @staticmethod
    def key_folder(table, key: dict) -> str:
        """The folder of the artifacts of ``key`` in ``table``: ``<schema>/<table>/<key hash>``."""
        primary = {attr: key[attr] for attr in table.primary_key}
        return f"{table.database}/{table.table_name.strip('_#')}/{config_hash(primary)}"

    @classmethod
    def path_for(cls, table, key: dict, name: str) -> str:
        return f"{cls.key_folder(table, key)}/{name}"

    def location(self, path: str) -> str:
        """Where ``path`` is, for messages: the file's full path in a folder store, else store and path."""
        if self.folder_protocol:
            return str(Path(self.spec.get("location", "")) / path)
        return f"{path!r} in store {self.name!r}"

    def put(self, name: str, path: str, data: bytes) -> dict:
        """Write ``data``; return the row fields that reference it."""
        try:
            if self.folder_protocol:
                self._write_file(path, data)
            else:
                self.backend.put_buffer(data, path)
        except OSError as error:
            raise ArtifactError(f"cannot write the artifact {self.location(path)}: {error.strerror or error}") from None
        return {name: path, f"{name}_size": len(data), f"{name}_sha256": hashlib.sha256(data).hexdigest()}

    def _write_file(self, path: str, data: bytes) -> None:
        """Write to a temporary name in the target folder and rename (atomic), with the store's modes."""
        folder_mode, file_mode = store_modes()
        root = Path(self.spec.get("location", ""))
        target = root / path
        missing = []
        folder = target.parent
        while folder != root and not folder.is_dir():
            missing.append(folder)
            folder = folder.parent
        for folder in reversed(missing):
            try:
                folder.mkdir(mode=folder_mode)
                os.chmod(folder, folder_mode)  # mkdir's mode is cut by the umask
            except FileExistsError:
                pass
        temporary = target.parent / f".tmp-{target.name}-{secrets.token_hex(4)}"
        handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, file_mode)
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(data)
            os.chmod(temporary, file_mode)
            os.replace(temporary, target)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise

    def get(self, row: dict, name: str, folder: str) -> bytes:
        """Read the artifact ``name`` that ``row`` references (its path checked against ``folder``) and verify it."""
        path = check_path(row[name], folder)
        try:
            data = self.backend.get_buffer(path)
        except OSError as error:
            raise ArtifactError(f"cannot read the artifact {self.location(path)}: {error.strerror or error}") from None
        except Exception as error:  # DataJoint's MissingExternalFile
            if type(error).__name__ != "MissingExternalFile":
                raise
            raise ArtifactError(
                f"the artifact {self.location(path)} is missing; it was deleted outside nntransfer. "
                "Delete the row and train the key again."
            ) from None
        if hashlib.sha256(data).hexdigest() != row[f"{name}_sha256"]:
            raise ArtifactError(
                f"Artifact {self.location(path)} does not match its checksum; "
                "it was changed or truncated after it was written. Delete the row and populate again."
            )
        return data

    def remove(self, path: str, folder: str) -> bool:
        """Delete the artifact at ``path`` if it is one of ``folder``'s; return False (and log) when refused."""
        try:
            check_path(path, folder)
        except ArtifactError as error:
            log.warning("not deleting: %s", error)
            return False
        try:
            backend = self.backend
            if backend.exists(path):
                backend.remove(path)
        except OSError as error:
            raise ArtifactError(f"cannot delete the artifact {self.location(path)}: {error.strerror or error}") from None
        return True
