"""``nntransfer gc``: find and remove what deleted rows and killed processes left in the store.

DataJoint's delete removes rows, cascading to the rows that depend on them,
but it knows nothing of files: deleting a Dataset entry removes the trained
rows built on it and their storage rows, while their artifact files stay,
and so do their checkpoints (checkpoint rows have no foreign key, see
:mod:`.checkpoints`).  A process killed between writing a file and
committing the row that references it leaves that file too.

:func:`collect` finds, for the trained-model tables of the active schema:

* artifact files in a table's folder that no storage row references;
* checkpoint rows of keys that can no longer be trained (their plan or
  configs were deleted) and are not done, or that are done while neither
  the table nor the trainer config keeps checkpoints;
* checkpoint files that no checkpoint row references;
* temporary files of interrupted writes.

Files younger than ``grace`` seconds and files of keys whose job is
reserved right now are left alone: an attempt in progress writes its files
before the rows that reference them.  Everything found lies inside the
schema's own folders of the store; nothing else is listed, nor removed.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..hashing import config_hash
from .checkpoints import Checkpoint
from .restrictions import check_restriction

DEFAULT_GRACE_S = 3600.0
"""Files younger than this are never collected (attempts in progress write files before rows)."""


@dataclass
class Orphans:
    """What :func:`collect` found (and removed, when asked): store paths and checkpoint row names."""

    files: list = field(default_factory=list)
    bytes: int = 0
    checkpoint_rows: list = field(default_factory=list)
    removed: bool = False

    def describe(self) -> str:
        verb = "removed" if self.removed else "found"
        lines = [f"{verb}: {path}" for path in self.files]
        lines += [f"{verb} checkpoint row: {name}" for name in self.checkpoint_rows]
        lines.append(f"{verb} {len(self.files)} orphaned files ({self.bytes / 2**20:.1f} MiB) and "
                     f"{len(self.checkpoint_rows)} orphaned checkpoint rows")
        return "\n".join(lines)


def _files(store, prefix: str) -> dict:
    """``{relative path: (mtime, size)}`` of the files under ``prefix`` in ``store``."""
    found = {}
    if store.folder_protocol:
        root = Path(store.spec.get("location", ""))
        for folder, _, names in os.walk(root / prefix):
            for name in names:
                path = Path(folder) / name
                stat = path.lstat()
                found[path.relative_to(root).as_posix()] = (stat.st_mtime, stat.st_size)
        return found
    backend = store.backend
    base = backend._full_path("")
    if not backend.fs.exists(backend._full_path(prefix)):
        return found
    for full, info in backend.fs.find(backend._full_path(prefix), detail=True).items():
        modified = info.get("mtime") or info.get("LastModified")
        stamp = modified.timestamp() if hasattr(modified, "timestamp") else float(modified or 0)
        found[full[len(base):].lstrip("/")] = (stamp, int(info.get("size") or 0))
    return found


def _key_hashes(table, rows) -> set:
    return {config_hash({name: row[name] for name in table.primary_key}) for row in rows}


def _is_planned_or_done(table, key: dict) -> tuple[bool, bool]:
    """Whether ``key`` can still be trained in ``table`` (it is planned, or its configs exist) and whether it is done."""
    check_restriction(key)  # the key comes from a JSON column: typed values only
    planned = table.plan_table() if hasattr(type(table), "plan_table") else table.key_source
    return bool(planned & key), bool(table & key)


def collect(tables, store, *, grace: float = DEFAULT_GRACE_S, remove: bool = False) -> Orphans:
    """Find (and with ``remove``, delete) the orphans of ``tables`` (trained-model tables) in ``store``."""
    found = Orphans(removed=remove)
    now = time.time()
    doomed_rows = []
    for table in tables:
        busy = _key_hashes(table, (table.jobs & "status = 'reserved'").to_dicts())
        referenced = set()
        for part, column in ((table.ModelStorage, "model_state"), (table.TransferData, "transfer_data")):
            referenced.update(part().to_arrays(column))
        checkpoints = (Checkpoint & {"target": table.full_table_name}).to_dicts()
        forced = set()
        for row in checkpoints:
            if row["key_hash"] in busy:
                referenced.add(row["checkpoint"])
                continue
            planned, done = _is_planned_or_done(table, row["trained_key"])
            if (not planned and not done) or (done and not table.keeps_checkpoints(row["trained_key"])):
                doomed_rows.append(row)
                forced.add(row["checkpoint"])
            else:
                referenced.add(row["checkpoint"])
        name = table.table_name.strip("_#~")
        for prefix in (f"{table.database}/{name}", f"{table.database}/checkpoints/{name}"):
            for path, (modified, size) in sorted(_files(store, prefix).items()):
                key_hash = path.split("/")[-2]
                if path not in forced and (path in referenced or key_hash in busy or now - modified < grace):
                    continue
                found.files.append(path)
                found.bytes += size
    found.checkpoint_rows = [f"{row['target']} {row['key_hash']} {row['checkpoint_name']}" for row in doomed_rows]
    if remove:
        for row in doomed_rows:
            (Checkpoint & {name: row[name] for name in ("target", "key_hash", "checkpoint_name")}).delete_quick()
        for path in found.files:
            store.backend.remove(path)
        if store.folder_protocol:
            _remove_empty_folders(Path(store.spec.get("location", "")), {str(Path(p).parent) for p in found.files})
    return found


def _remove_empty_folders(root: Path, folders: set) -> None:
    for folder in sorted(folders, key=len, reverse=True):
        try:
            (root / folder).rmdir()
        except OSError:  # not empty (another attempt's files), or gone already
            pass
