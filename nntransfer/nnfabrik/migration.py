"""Import an nnfabrik schema written by DataJoint 0.12-0.14 on MySQL/MariaDB (``nntransfer import-nnfabrik``).

What is read, with one read-only connection to the old server (no DataJoint
0.14 needed):

* ``fabrikant``, ``seed``, ``dataset``, ``model``, ``trainer``: configs are
  longblobs in DataJoint's blob format (read with DataJoint's own reader,
  which never unpickles);
* every computed table with nnfabrik's trained-model columns (``score``,
  ``output`` and the keys of the three config tables), its ``ModelStorage``
  part and, for a transfer table (``transfer_step``, ``collapsed_history``,
  ``data_transfer``), its ``DataStorage`` and ``CollapsedHistory`` parts;
* the ``attach@store`` files those parts point to, found through the
  ``~external_<store>`` table at ``<schema>/<ab>/<cd>/<uuid>.<file name>`` in
  the old store, read with the store configured for it: ``store`` names a
  DataJoint store in ``dj.config["stores"]`` that points where the old one
  did (a folder or S3), or ``store_location`` is the folder itself.

What is written, into ``target`` on the configured nntransfer database: the
tables of :func:`nntransfer.nnfabrik.main.my_nnfabrik` (Fabrikant, Seed,
Dataset, Model, Trainer, all own to the schema), keyed by the old hashes; one
:class:`~nntransfer.nnfabrik.templates.trained_model.TrainedModelBase` (or
:class:`~nntransfer.nnfabrik.templates.transfer.TransferredTrainedModelBase`)
table per old one, with the same class name, score, output (as it was given)
and the state_dict (and generated data) in nntransfer's artifact store; a
transfer table's steps are planned with their old ``collapsed_history``
(nnfabrik's hashing, checked step by step).  State_dicts are checked to load
with ``torch.load(weights_only=True)`` and generated data with
``allow_pickle=False`` before anything is written.

Rows that exist in the target are left as they are (a different config under
an existing key is an error), so running the import again changes nothing;
the old schema and store are only read.  The rows are written in one
transaction after the artifacts: a failed import leaves no row behind, and
its artifacts are overwritten by the next run (their paths are fixed).
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np

from ..db import import_datajoint
from ..errors import ConfigError, DatabaseError, DuplicateEntryError, TransferError
from ..hashing import canonical_json, from_jsonable, make_hash, nnfabrik_config, to_stored
from ..serialization import output_to_json, score_to_float, state_dict_from_bytes, transfer_data_from_bytes
from ..steps import plan_row

log = logging.getLogger(__name__)

PASSWORD_ENV = "NNFABRIK_SOURCE_PASS"
"""Environment variable with the old server's password (kept out of the command line)."""

CONFIG_KINDS = ("dataset", "model", "trainer")
TRAINED_COLUMNS = {"model_fn", "model_hash", "dataset_fn", "dataset_hash", "trainer_fn", "trainer_hash", "seed",
                   "score", "output"}
TRANSFER_COLUMNS = {"transfer_step", "collapsed_history", "data_transfer"}
SUBFOLDING = (2, 2)
"""DataJoint 0.14's default subfolding of external files: ``abcdef...`` under ``ab/cd/``."""


@dataclass
class ImportReport:
    """What an import did: rows written per table, and what it noticed."""

    written: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)

    def add(self, table: str, count: int) -> None:
        self.written[table] = self.written.get(table, 0) + count

    def __str__(self) -> str:
        lines = [f"{table}: {count} new rows" for table, count in self.written.items()]
        return "\n".join(lines + [f"note: {note}" for note in self.notes]) or "nothing to import"


@dataclass(frozen=True)
class Source:
    """Where the old schema is: ``mysql://user[:password]@host[:port]/schema``."""

    host: str
    port: int
    user: str
    schema: str
    password: str = field(default="", repr=False)

    @classmethod
    def parse(cls, url: str) -> "Source":
        parsed = urlparse(url)
        schema = parsed.path.strip("/")
        if parsed.scheme not in ("mysql", "mariadb") or not parsed.hostname or not schema:
            raise ConfigError(
                f"--from must look like mysql://user@host:3306/old_schema (nnfabrik's schemas are on MySQL or "
                f"MariaDB), got {_without_password(url)!r}."
            )
        password = unquote(parsed.password) if parsed.password else os.environ.get(PASSWORD_ENV, "")
        return cls(parsed.hostname, parsed.port or 3306, unquote(parsed.username or "root"), schema, password)


def _without_password(url: str) -> str:
    return re.sub(r"//([^:/@]*):[^@]*@", r"//\1:***@", url)


class _Reader:
    """Read-only access to the old schema."""

    def __init__(self, source: Source):
        import pymysql

        self.schema = source.schema
        try:
            self.connection = pymysql.connect(host=source.host, port=source.port, user=source.user,
                                              password=source.password, database=source.schema, autocommit=True)
        except pymysql.MySQLError as error:
            raise DatabaseError(
                f"Cannot read the nnfabrik schema {source.schema!r} at {source.host}:{source.port} as "
                f"{source.user!r}: {error.args[-1] if error.args else error}. Check the URL, and put the password "
                f"into {PASSWORD_ENV}."
            ) from None
        self.tables = [row[0] for row in self.query("SHOW TABLES")]

    def query(self, sql: str, args=None) -> list:
        with self.connection.cursor() as cursor:
            cursor.execute(sql, args)
            return list(cursor.fetchall())

    def rows(self, table: str) -> list[dict]:
        with self.connection.cursor() as cursor:
            cursor.execute(f"SELECT * FROM `{table}`")
            names = [column[0] for column in cursor.description]
            return [dict(zip(names, row)) for row in cursor.fetchall()]

    def columns(self, table: str) -> dict:
        """Column name -> SQL comment (DataJoint 0.14 writes ``:attach@store:`` there)."""
        return {row[0]: row[8] for row in self.query(f"SHOW FULL COLUMNS FROM `{table}`")}


def _unpack(value, what: str):
    from datajoint.blob import unpack

    try:
        return unpack(bytes(value))
    except Exception as error:  # a blob DataJoint cannot read
        raise DatabaseError(f"{what} is not in DataJoint's blob format ({error}); it cannot be imported.") from None


def _plain_config(value, what: str, report: ImportReport):
    """A config as stored: numpy scalars as their values (hash unchanged), arrays as lists (noted)."""
    def lists(obj):
        if isinstance(obj, np.ndarray):
            report.notes.append(f"{what}: a numpy array was stored as a list (JSON holds no arrays)")
            return obj.tolist()
        if isinstance(obj, dict):
            return {key: lists(item) for key, item in obj.items()}
        if isinstance(obj, (list, tuple)):
            return type(obj)(lists(item) for item in obj)
        return obj

    return nnfabrik_config(lists(value))


class _OldStore:
    """The old ``attach@store`` files, read through a DataJoint store or from a folder."""

    def __init__(self, store: str | None, store_location: str | None):
        if (store is None) == (store_location is None):
            raise ConfigError(
                "say where the old attachments are: --store NAME (a store in dj.config['stores'] that points where "
                "the old one did, a folder or S3) or --store-location FOLDER (the old store's location)."
            )
        self.location = Path(store_location) if store_location else None
        if store:
            from datajoint.storage import get_storage_backend

            self.backend = get_storage_backend(import_datajoint().config.get_store_spec(store))

    def exists(self, path: str) -> bool:
        if self.location is not None:
            return (self.location / path).is_file()
        return self.backend.exists(path)

    def read(self, path: str) -> bytes:
        if self.location is not None:
            try:
                return (self.location / path).read_bytes()
            except OSError as error:
                raise DatabaseError(f"the attachment {self.location / path} cannot be read: {error.strerror}") from None
        return self.backend.get_buffer(path)


def _attachment_path(schema: str, uuid: bytes, name: str) -> str:
    hexa = bytes(uuid).hex()
    folders = []
    rest = hexa
    for width in SUBFOLDING:
        folders.append(rest[:width])
        rest = rest[width:]
    return f"{schema}/{'/'.join(folders)}/{hexa}.{name}"


def _trained_tables(reader: _Reader) -> dict:
    """Master tables with nnfabrik's trained-model columns: ``{table name: columns}``."""
    found = {}
    for table in reader.tables:
        if not table.startswith("__") or "__" in table[2:]:
            continue
        columns = reader.columns(table)
        if TRAINED_COLUMNS <= set(columns):
            found[table] = columns
    return found


def _class_name(table: str) -> str:
    return "".join(part.capitalize() for part in table.strip("_").split("_"))


def import_nnfabrik(source: str, target: str, store: str | None = None, store_location: str | None = None,
                    tables: list | None = None) -> ImportReport:
    """Import the nnfabrik schema at ``source`` into ``target`` (see the module docstring); return the report."""
    old = Source.parse(source)
    reader = _Reader(old)
    try:
        return _import(reader, old, target, store, store_location, tables)
    finally:
        reader.connection.close()


def _import(reader, old, target, store, store_location, tables) -> ImportReport:
    from .. import tables as core
    from . import dj as nnf_dj

    report = ImportReport()
    missing = [name for name in ("fabrikant", "seed") + CONFIG_KINDS if name not in reader.tables]
    if missing:
        raise DatabaseError(f"{old.schema!r} has no table {missing}; it is not an nnfabrik schema "
                            "(nnfabrik.main's tables or those of my_nnfabrik are needed).")
    trained = _trained_tables(reader)
    if tables is not None:
        unknown = sorted(set(tables) - {_class_name(t) for t in trained})
        if unknown:
            raise ConfigError(f"{old.schema!r} has no trained-model table {unknown}; it has "
                              f"{sorted(_class_name(t) for t in trained)}.")
        trained = {t: c for t, c in trained.items() if _class_name(t) in tables}
    attachments = _OldStore(store, store_location)
    externals = {}
    for name in reader.tables:
        if name.startswith("~external_"):
            externals.update({bytes(row["hash"]): row["attachment_name"] for row in reader.rows(name)})
    _check_attachments(reader, trained, externals, attachments, old)  # before anything is declared or written
    core.activate()  # nntransfer's schema holds the checkpoints and configures the artifact store
    if "nnfabrik.schema_name" not in nnf_dj.config:
        nnf_dj.config["nnfabrik.schema_name"] = target  # importing main then declares into the target, not elsewhere
    from .main import my_nnfabrik

    module = my_nnfabrik(target, use_common_fabrikant=False, use_common_seed=False)
    rows = []  # (table, rows), written in one transaction at the end
    rows.append((module.Fabrikant, _new_rows(module.Fabrikant, reader.rows("fabrikant"), report)))
    rows.append((module.Seed, _new_rows(module.Seed, reader.rows("seed"), report)))
    for kind in CONFIG_KINDS:
        table = getattr(module, kind.capitalize())
        rows.append((table, _config_rows(table, kind, reader.rows(kind), report)))
    for name, columns in trained.items():
        rows.extend(_trained_rows(module, reader, name, columns, externals, attachments, report, old))
    connection = module.schema.connection
    with connection.transaction:
        for table, new in rows:
            if new:
                table.insert(new, allow_direct_insert=True, skip_duplicates=True)
                report.add(table.full_table_name, len(new))
    return report


def _new_rows(table, rows: list, report: ImportReport) -> list:
    primary = table.primary_key
    existing = {tuple(row[k] for k in primary) for row in table.proj().to_dicts()}
    heading = set(table.heading.names)
    return [{k: v for k, v in row.items() if k in heading} for row in rows
            if tuple(row[k] for k in primary) not in existing]


def _config_rows(table, kind: str, rows: list, report: ImportReport) -> list:
    new = []
    for row in rows:
        key = {f"{kind}_fn": row[f"{kind}_fn"], f"{kind}_hash": row[f"{kind}_hash"]}
        what = f"{table.__name__} {key}"
        config = _plain_config(_unpack(row[f"{kind}_config"], f"the config of {what}"), what, report)
        if make_hash(config) != key[f"{kind}_hash"]:
            report.notes.append(f"{what}: its config hashes to {make_hash(config)} now; the old hash is kept")
        stored = to_stored(config, path=f"{kind}_config")
        existing = (table & key).to_dicts()
        if existing:
            if canonical_json(from_jsonable(existing[0][f"{kind}_config"])) != canonical_json(config):
                raise DuplicateEntryError(f"{what} exists in the target with a different config; nothing imported.")
            continue
        new.append({**key, f"{kind}_config": stored, f"{kind}_fabrikant": row[f"{kind}_fabrikant"],
                    f"{kind}_comment": row.get(f"{kind}_comment", ""), f"{kind}_ts": row.get(f"{kind}_ts")})
    return new


def _trained_rows(module, reader, name, columns, externals, attachments, report, old) -> list:
    from ..tables.trained import artifact_store
    from .templates.trained_model import TrainedModelBase
    from .templates.transfer import TransferredTrainedModelBase

    is_transfer = TRANSFER_COLUMNS <= set(columns)
    base = TransferredTrainedModelBase if is_transfer else TrainedModelBase
    table_class = module.schema(
        type(_class_name(name), (base,), {"nnfabrik": module, "table_comment": f"imported from {old.schema}.{name}",
                                          "__module__": module.__name__}),
        context=vars(module),
    )
    setattr(module, table_class.__name__, table_class)
    table = table_class()
    primary = [k for k in table.heading.primary_key]
    source_primary = [k for k in primary if k in columns]
    done = {tuple(_key_value(row[k]) for k in source_primary) for row in table.proj().to_dicts()}
    storage = _part_rows(reader, f"{name}__model_storage", source_primary)
    data = _part_rows(reader, f"{name}__data_storage", source_primary) if is_transfer else {}
    histories = _part_rows(reader, f"{name}__collapsed_history", source_primary) if is_transfer else {}
    store = artifact_store()
    masters, models, datas, plans = [], [], [], []
    old_rows = reader.rows(name)
    by_successor = {}
    if is_transfer:
        for row in old_rows:
            key = {k: row[k] for k in source_primary}
            by_successor[_successor(key, histories)] = key
    for row in old_rows:
        key = {k: _key_value(row[k]) for k in source_primary}
        identity = tuple(key[k] for k in source_primary)
        if identity in done:
            continue
        what = f"{name} {key}"
        output = output_to_json(_unpack(row["output"], f"the output of {what}"))
        master = {**key, "comment": row.get("comment", ""), "score": score_to_float(row["score"]), "output": output,
                  "fabrikant_name": row.get("fabrikant_name"), "trainedmodel_ts": row.get("trainedmodel_ts")}
        if identity not in storage:
            report.notes.append(f"{what}: no ModelStorage row; not imported (load_model would have nothing to load)")
            continue
        state = _attachment(storage[identity]["model_state"], externals, attachments, old, f"the state_dict of {what}")
        state_dict_from_bytes(state)  # refuses what would need unpickling
        models.append({**key, **store.put("model_state", store.path_for(table, key, "model_state.pt"), state)})
        if is_transfer:
            successor = _successor(key, histories)
            previous = by_successor.get(key["collapsed_history"]) if key["transfer_step"] else None
            if key["transfer_step"] and previous is None:
                raise TransferError(f"{what}: no step of {name} leads to its collapsed_history; its chain is "
                                    "incomplete, so it cannot be planned.")
            plans.append(plan_row(key, _typed(previous), f"imported from {old.schema}.{name}", hashing="nnfabrik"))
            master.update(successor_history=successor,
                          received="" if previous is None else ("state_and_data" if previous["data_transfer"]
                                                                else "model_state"))
            if identity in data:
                blob = _attachment(data[identity]["transfer_data"], externals, attachments, old,
                                   f"the transfer data of {what}")
                transfer_data_from_bytes(blob)  # refuses arrays that would need unpickling
                datas.append({**key, **store.put("transfer_data", store.path_for(table, key, "transfer_data.npz"),
                                                  blob)})
        masters.append(master)
    written = []
    if is_transfer:
        written.append((table.plan_table(), [{**p, "ready": 1} for p in plans]))
    written += [(table_class, masters), (table_class.ModelStorage, models)]
    if is_transfer:
        written.append((table_class.TransferData, datas))
    return written


def _key_value(value):
    return int(value) if isinstance(value, (bool, np.integer)) else value


def _typed(key: dict | None) -> dict | None:
    if key is None:
        return None
    return {k: _key_value(v) for k, v in key.items()}


def _successor(key: dict, histories: dict) -> str:
    """The ``collapsed_history`` of the steps after ``key``: from ``CollapsedHistory``, or computed as nnfabrik did."""
    row = histories.get(tuple(_key_value(key[k]) for k in key))
    if row is not None:
        return row["next_collapsed_history"]
    return make_hash({k: _key_value(v) for k, v in key.items()})


def _part_rows(reader, table: str, primary: list) -> dict:
    if table not in reader.tables:
        return {}
    return {tuple(_key_value(row[k]) for k in primary): row for row in reader.rows(table)}


def _check_attachments(reader, trained: dict, externals: dict, attachments: _OldStore, old: Source) -> None:
    """Every attachment the parts point to is listed and can be found in the old store."""
    missing = []
    for name in trained:
        for part, column in (("model_storage", "model_state"), ("data_storage", "transfer_data")):
            if f"{name}__{part}" not in reader.tables:
                continue
            for (uuid,) in reader.query(f"SELECT `{column}` FROM `{name}__{part}`"):
                label = externals.get(bytes(uuid))
                path = _attachment_path(old.schema, uuid, label) if label else f"(uuid {bytes(uuid).hex()})"
                if label is None or not attachments.exists(path):
                    missing.append(path)
    if missing:
        where = attachments.location if attachments.location is not None else "the store"
        raise DatabaseError(
            f"{len(missing)} attachments of {old.schema!r} cannot be read from {where}, e.g. {missing[:3]}; point "
            "--store or --store-location where the old attach@store files are. Nothing was imported."
        )


def _attachment(uuid, externals: dict, attachments: _OldStore, old: Source, what: str) -> bytes:
    name = externals.get(bytes(uuid))
    if name is None:
        raise DatabaseError(f"{what} points to an attachment that no ~external_ table of {old.schema!r} lists.")
    return attachments.read(_attachment_path(old.schema, uuid, name))
