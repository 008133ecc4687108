"""An nnfabrik schema as DataJoint 0.14 writes it on MySQL/MariaDB, built without DataJoint 0.14.

The tables are those of nnfabrik's ``main`` and of a ``TrainedModel`` and a
``TransferredTrainedModel`` (``ModelStorage``, ``DataStorage`` and
``CollapsedHistory`` parts), declared as DataJoint 0.14.3 declares them
(its ``SHOW CREATE TABLE`` output, trimmed to what matters).  Longblobs are
written in DataJoint's blob format (DataJoint 2's writer produces the same
bytes as 0.14's; checked when this fixture was written), ``attach@store``
files as DataJoint 0.14 lays them out: ``<location>/<schema>/<ab>/<cd>/<uuid>.<file
name>`` with the uuid the MD5 of the file name, a NUL and the contents, listed
in ``~external_<store>``.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import torch

DDL = [
    """CREATE TABLE `fabrikant` (
  `fabrikant_name` varchar(32) NOT NULL, `full_name` varchar(128) NOT NULL DEFAULT '',
  `email` varchar(64) NOT NULL, `affiliation` varchar(32) NOT NULL, `dj_username` varchar(64) NOT NULL,
  PRIMARY KEY (`fabrikant_name`)) ENGINE=InnoDB""",
    """CREATE TABLE `seed` (`seed` int(11) NOT NULL, PRIMARY KEY (`seed`)) ENGINE=InnoDB""",
    """CREATE TABLE `~external_minio` (
  `hash` binary(16) NOT NULL COMMENT ':uuid:hash of contents (blob), of filename + contents (attach), or relative filepath (filepath)',
  `size` bigint(20) unsigned NOT NULL, `attachment_name` varchar(255) DEFAULT NULL,
  `filepath` varchar(1000) DEFAULT NULL, `contents_hash` binary(16) DEFAULT NULL,
  `timestamp` timestamp NOT NULL DEFAULT current_timestamp(), PRIMARY KEY (`hash`)) ENGINE=InnoDB""",
] + [
    f"""CREATE TABLE `{kind}` (
  `{kind}_fn` varchar({128 if kind == 'model' else 64}) NOT NULL, `{kind}_hash` varchar(64) NOT NULL,
  `{kind}_config` longblob NOT NULL, `{kind}_fabrikant` varchar(32) NOT NULL,
  `{kind}_comment` varchar(256) NOT NULL DEFAULT '', `{kind}_ts` timestamp NOT NULL DEFAULT current_timestamp(),
  PRIMARY KEY (`{kind}_fn`,`{kind}_hash`),
  CONSTRAINT `{kind}_ibfk_1` FOREIGN KEY (`{kind}_fabrikant`) REFERENCES `fabrikant` (`fabrikant_name`) ON UPDATE CASCADE
) ENGINE=InnoDB"""
    for kind in ("model", "dataset", "trainer")
]
CONFIG_KEY = """`model_fn` varchar(128) NOT NULL, `model_hash` varchar(64) NOT NULL, `dataset_fn` varchar(64) NOT NULL,
  `dataset_hash` varchar(64) NOT NULL, `trainer_fn` varchar(64) NOT NULL, `trainer_hash` varchar(64) NOT NULL,
  `seed` int(11) NOT NULL"""
TRAINED_KEY = "`model_fn`,`model_hash`,`dataset_fn`,`dataset_hash`,`trainer_fn`,`trainer_hash`,`seed`"
TRANSFER_KEY = f"`transfer_step`,{TRAINED_KEY},`collapsed_history`,`data_transfer`"
MASTER_COLUMNS = """`comment` varchar(768) NOT NULL DEFAULT '', `score` float NOT NULL, `output` longblob NOT NULL,
  `fabrikant_name` varchar(32) DEFAULT NULL, `trainedmodel_ts` timestamp NOT NULL DEFAULT current_timestamp()"""
DDL += [
    f"""CREATE TABLE `__trained_model` ({CONFIG_KEY}, {MASTER_COLUMNS}, PRIMARY KEY ({TRAINED_KEY}),
  FOREIGN KEY (`model_fn`,`model_hash`) REFERENCES `model` (`model_fn`,`model_hash`) ON UPDATE CASCADE,
  FOREIGN KEY (`seed`) REFERENCES `seed` (`seed`) ON UPDATE CASCADE) ENGINE=InnoDB""",
    f"""CREATE TABLE `__trained_model__model_storage` ({CONFIG_KEY},
  `model_state` binary(16) NOT NULL COMMENT ':attach@minio:', PRIMARY KEY ({TRAINED_KEY}),
  FOREIGN KEY ({TRAINED_KEY}) REFERENCES `__trained_model` ({TRAINED_KEY}) ON UPDATE CASCADE,
  FOREIGN KEY (`model_state`) REFERENCES `~external_minio` (`hash`)) ENGINE=InnoDB""",
    f"""CREATE TABLE `__transferred_trained_model` (`transfer_step` int(11) NOT NULL, {CONFIG_KEY},
  `collapsed_history` varchar(64) NOT NULL, `data_transfer` tinyint(1) NOT NULL, {MASTER_COLUMNS},
  PRIMARY KEY ({TRANSFER_KEY})) ENGINE=InnoDB""",
] + [
    f"""CREATE TABLE `__transferred_trained_model__{part}` (`transfer_step` int(11) NOT NULL, {CONFIG_KEY},
  `collapsed_history` varchar(64) NOT NULL, `data_transfer` tinyint(4) NOT NULL,
  `{column}` binary(16) NOT NULL COMMENT ':attach@minio:', PRIMARY KEY ({TRANSFER_KEY}),
  FOREIGN KEY ({TRANSFER_KEY}) REFERENCES `__transferred_trained_model` ({TRANSFER_KEY}) ON UPDATE CASCADE,
  FOREIGN KEY (`{column}`) REFERENCES `~external_minio` (`hash`)) ENGINE=InnoDB"""
    for part, column in (("model_storage", "model_state"), ("data_storage", "transfer_data"))
] + [
    f"""CREATE TABLE `__transferred_trained_model__collapsed_history` (`next_collapsed_history` varchar(64) NOT NULL,
  `transfer_step` int(11) NOT NULL, {CONFIG_KEY}, `collapsed_history` varchar(64) NOT NULL,
  `data_transfer` tinyint(4) NOT NULL, PRIMARY KEY (`next_collapsed_history`,{TRANSFER_KEY}),
  FOREIGN KEY ({TRANSFER_KEY}) REFERENCES `__transferred_trained_model` ({TRANSFER_KEY}) ON UPDATE CASCADE
) ENGINE=InnoDB""",
]


class LegacySchema:
    """Writes an nnfabrik schema of DataJoint 0.14 into ``database`` through a pymysql ``connection``."""

    def __init__(self, connection, database: str, store: Path):
        self.connection, self.database, self.store = connection, database, Path(store)
        self.execute(f"CREATE DATABASE `{database}`")
        self.connection.select_db(database)
        for statement in DDL:
            self.execute(statement)

    def execute(self, sql, args=None):
        with self.connection.cursor() as cursor:
            cursor.execute(sql, args)
        self.connection.commit()

    def insert(self, table: str, row: dict):
        names = ", ".join(f"`{name}`" for name in row)
        self.execute(f"INSERT INTO `{table}` ({names}) VALUES ({', '.join(['%s'] * len(row))})", list(row.values()))

    def attach(self, name: str, contents: bytes) -> bytes:
        """Store ``contents`` as the attachment ``name``; return the uuid the part row holds."""
        uuid = hashlib.md5(name.encode() + b"\0" + contents).digest()
        hexa = uuid.hex()
        path = self.store / self.database / hexa[:2] / hexa[2:4] / f"{hexa}.{name}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(contents)
        self.insert("~external_minio", {"hash": uuid, "size": len(contents), "attachment_name": name})
        return uuid


def blob(value) -> bytes:
    """``value`` in DataJoint's blob format, as nnfabrik's longblob columns hold it."""
    from datajoint.blob import pack

    return pack(value)


def state_file(seed: int) -> bytes:
    """A ``torch.save``d state_dict of ``itest_nnfabrik.digits_model_fn`` (h_dim 5), as nnfabrik attached it."""
    from itest_nnfabrik import digits_dataset_fn, digits_model_fn

    model = digits_model_fn(digits_dataset_fn(seed), seed, h_dim=5)
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getvalue()


def npz_file(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()
