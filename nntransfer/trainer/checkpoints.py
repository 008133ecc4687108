"""Where checkpoints live: a small, byte-oriented store interface.

:class:`CheckpointStore` turns a checkpoint (a dict of tensors and plain
values) into bytes with ``torch.save`` and back with
``torch.load(weights_only=True)``, and keeps one checkpoint per *tag*
(``"last"``, ``"best"``).  A backend only stores named byte strings, so a new
one (a database or object store) implements four methods: ``_put``,
``_get``, ``_delete``, ``_names``.  Entry names are ``"<tag>-<epoch:06d>"``,
so ``list()`` needs no payload reads.

How a store reaches a run from outside: nnfabrik's trainer contract passes a
callback ``cb``.  If ``cb`` has an attribute ``checkpoint_store`` (a
:class:`CheckpointStore`), the run checkpoints there and resumes from it; the
table layer hands every table-driven training such a ``cb`` with a store in
the database (``nntransfer.tables.DatabaseCheckpointStore``, which implements
this interface).  :func:`callback_store` reads the attribute; the loop puts
what it finds in ``state.checkpoint_store``, where the ``checkpointing``
module takes it up (see :mod:`nntransfer.trainer.modules.checkpointing`).
"""

import io
import logging
import os
import re
import tempfile
from abc import ABC, abstractmethod
from pathlib import Path

from nntransfer.errors import TrainingError

log = logging.getLogger(__name__)

_TAG = re.compile(r"^[a-z0-9_]+$")
_ENTRY = re.compile(r"^([a-z0-9_]+)-(\d{6,})$")


class CheckpointError(TrainingError):
    """A checkpoint cannot be written, found or read."""


def callback_store(cb):
    """The checkpoint store that a trainer's ``cb`` brings as ``cb.checkpoint_store``, or None."""
    return getattr(cb, "checkpoint_store", None)


def to_bytes(payload: dict) -> bytes:
    # torch is imported here, not with the module: the table layer imports this
    # interface, and commands that only read the database must start without torch
    import torch

    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


def from_bytes(data: bytes) -> dict:
    import torch

    return torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")


class CheckpointStore(ABC):
    """Keeps the newest checkpoint of each tag.

    ``save(epoch, payload, tags)`` stores ``payload`` under every tag given
    (replacing that tag's previous checkpoint); ``load(which)`` returns the
    payload of a tag (``"last"``, ``"best"``) or of an epoch number, or None
    if there is none.  A checkpoint that cannot be read (its file missing,
    truncated or holding objects that ``weights_only`` loading refuses) is
    logged and treated as missing, so a resumed or retried training always
    makes progress instead of failing on it for good; ``list()`` gives ``[{"tag": ..., "epoch": ...}]``;
    ``clear()`` removes everything.
    """

    def save(self, epoch: int, payload: dict, tags=("last",)) -> None:
        tags = list(tags)
        for tag in tags:
            if not isinstance(tag, str) or not _TAG.match(tag):
                raise CheckpointError(f"checkpoint tag {tag!r} must be lower-case letters, digits or '_'.")
        data = to_bytes(payload)
        for tag in tags:
            old = [entry for entry in self._entries() if entry[0] == tag]
            self._put(f"{tag}-{epoch:06d}", data)
            for old_tag, old_epoch, name in old:
                if old_epoch != epoch:
                    self._delete(name)

    def load(self, which="last"):
        entries = self._entries()
        if isinstance(which, int):
            matches = [entry for entry in entries if entry[1] == which]
        else:
            matches = [entry for entry in entries if entry[0] == which]
        for _, _, name in sorted(matches, key=lambda entry: entry[1], reverse=True):
            try:
                return from_bytes(self._get(name))
            except Exception as error:  # missing, truncated, tampered with: resuming from it is impossible
                log.warning("checkpoint %r cannot be read (%s); it is treated as missing", name, error)
        return None

    def list(self) -> list:
        return [{"tag": tag, "epoch": epoch} for tag, epoch, _ in sorted(self._entries())]

    def clear(self) -> None:
        for _, _, name in self._entries():
            self._delete(name)

    def _entries(self):
        entries = []
        for name in self._names():
            match = _ENTRY.match(name)
            if match:
                entries.append((match.group(1), int(match.group(2)), name))
        return entries

    @abstractmethod
    def _put(self, name: str, data: bytes) -> None:
        """Store ``data`` under ``name``, replacing what was there, atomically if possible."""

    @abstractmethod
    def _get(self, name: str) -> bytes:
        """The bytes stored under ``name``."""

    @abstractmethod
    def _delete(self, name: str) -> None:
        """Remove ``name``; a missing name is not an error."""

    @abstractmethod
    def _names(self) -> list:
        """All stored names."""


class MemoryCheckpointStore(CheckpointStore):
    """Checkpoints in this process's memory (tests, notebooks, retries within a process)."""

    def __init__(self):
        self._data = {}

    def _put(self, name, data):
        self._data[name] = data

    def _get(self, name):
        return self._data[name]

    def _delete(self, name):
        self._data.pop(name, None)

    def _names(self):
        return list(self._data)


class LocalCheckpointStore(CheckpointStore):
    """Checkpoints as ``<name>.pt`` files in a folder, written atomically (temp file + rename)."""

    suffix = ".pt"

    def __init__(self, folder):
        self.folder = Path(folder)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise CheckpointError(f"cannot create checkpoint folder {str(self.folder)!r}: {error}") from error

    def _put(self, name, data):
        target = self.folder / f"{name}{self.suffix}"
        try:
            handle, temporary = tempfile.mkstemp(dir=self.folder, prefix=".tmp-")
        except OSError as error:
            raise CheckpointError(f"cannot write the checkpoint {target}: {error.strerror or error}") from None
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(data)
            os.replace(temporary, target)
        except OSError as error:
            Path(temporary).unlink(missing_ok=True)
            raise CheckpointError(f"cannot write the checkpoint {target}: {error.strerror or error}") from None
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def _get(self, name):
        return (self.folder / f"{name}{self.suffix}").read_bytes()

    def _delete(self, name):
        (self.folder / f"{name}{self.suffix}").unlink(missing_ok=True)

    def _names(self):
        return [path.name[: -len(self.suffix)] for path in self.folder.glob(f"*{self.suffix}")]
