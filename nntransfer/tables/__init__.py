"""The database layer: the only package that imports datajoint.

Importing it declares nothing and connects nowhere: the tables hang on one
unbound schema object until :func:`activate` connects and declares them (the
pattern of DataJoint Elements).  User tables decorated with their own schema
may reference these tables once they are activated.
"""

from __future__ import annotations

import logging
import os

from ..db import connect, describe_target, import_datajoint
from ..errors import ConfigError
from ..logs import quiet_native_type_warnings
from .artifacts import ArtifactStore
from .fabrik import ConfigTable, Dataset, Fabrikant, Model, Seed, Trainer, schema, table_for_kind
from .trained import TrainedModel, TrainedModelBase, TrainingCallback
from .checkpoints import Checkpoint, DatabaseCheckpointStore
from .transfer import TransferredTrainedModel, TransferredTrainedModelBase
from .insertion import insert
from .worker_devices import WorkerDevice
from .locks import check_schema_name, schema_lock
from .recipes import (
    DatasetTransferRecipe,
    ModelTransferRecipe,
    TrainedModelTransferRecipe,
    TrainerDatasetTransferRecipe,
    TrainerTransferRecipe,
)

DEFAULT_SCHEMA = "nntransfer"

log = logging.getLogger(__name__)
_announced: dict = {}


def schema_name_of(schema_name: str | None = None) -> str:
    """The checked name that :func:`activate` uses for ``schema_name`` (None: ``NNTRANSFER_SCHEMA`` or the default)."""
    return check_schema_name(schema_name or os.environ.get("NNTRANSFER_SCHEMA", DEFAULT_SCHEMA))


def activate(schema_name: str | None = None, *, create_tables: bool = True, must_exist: bool = False):
    """Connect (starting the embedded server if needed) and declare the tables.

    ``schema_name`` defaults to ``NNTRANSFER_SCHEMA`` or ``"nntransfer"``;
    it must be letters, digits and ``_``.  Calling it again with the same
    name is a no-op; with another name the tables switch to that schema
    (the next inserts and populates go there).  Returns the schema.  A new
    schema is logged as created; ``must_exist=True`` (commands that only
    read) refuses a schema that does not exist, naming those that do,
    instead of creating it.  Processes that activate a new
    schema at the same instant (a job array's first tasks) declare it once:
    declaration runs under a lock of the database server (see :mod:`.locks`),
    the job tables included.
    """
    name = schema_name_of(schema_name)
    connection = connect()
    target = describe_target(import_datajoint())
    existing = import_datajoint().list_schemas(connection)
    if must_exist and name not in existing:
        ours = sorted(s for s in existing if s not in ("information_schema", "mysql", "performance_schema", "sys",
                                                        "public", "pg_catalog", "pg_toast"))
        raise ConfigError(
            f"there is no schema {name!r} on the {target}; nothing was created. Schemas there: "
            f"{', '.join(ours) or 'none'}. Pass --schema (or set NNTRANSFER_SCHEMA) to the one your recipe was "
            "run in."
        )
    if not (must_exist and _activate_declared(name, connection)):
        _activate_under_lock(name, connection, create_tables)
    if name not in existing or _announced.get("schema") != (name, target):  # said once, not at every activate
        log.info("%s %r on the %s", "created schema" if name not in existing else "schema", name, target)
        _announced["schema"] = (name, target)
    return schema


def _activate_declared(name: str, connection) -> bool:
    """Bind the tables to the existing schema ``name`` without declaring anything; False if one is missing.

    Commands that only read (``status``, ``errors``, ``results``) start
    faster this way: binding a table that may need declaring makes DataJoint
    read its heading from the catalog (about ten queries per table), binding
    one that exists takes one.  When a table is missing (a schema from an
    older version) the caller binds under the lock, declaring it.
    """
    if schema.database == name:
        return True
    if schema.database is not None:
        return False
    with quiet_native_type_warnings():
        schema.activate(name, connection=connection, create_tables=False)
    schema.create_tables = None  # tables bound later (a user's) are declared as usual
    dj = import_datajoint()
    expected = {table.table_name for master, _ in schema.declare_list
                for table in [master, *(getattr(master, part) for part in dir(master) if part[:1].isupper())]
                if isinstance(table, type) and issubclass(table, dj.Table)}
    present = {row[0] for row in connection.query(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", args=(name,)).fetchall()}
    if expected <= present:
        return True
    schema.database = None  # bound again, declaring what is missing
    return False


def _activate_under_lock(name: str, connection, create_tables: bool) -> None:
    with schema_lock(connection, name):
        if schema.database not in (None, name):
            # DataJoint binds a schema object once; unbound, it binds every table again to the new name
            log.info("switching the tables from schema %r to %r", schema.database, name)
            schema.database = None
        with quiet_native_type_warnings():
            schema.activate(name, connection=connection, create_tables=create_tables)
            if create_tables:
                TrainedModel().jobs
                TransferredTrainedModel().jobs


__all__ = [
    "activate",
    "ArtifactStore",
    "schema",
    "Fabrikant",
    "Seed",
    "Dataset",
    "Model",
    "Trainer",
    "ConfigTable",
    "TrainedModel",
    "TrainedModelBase",
    "TrainingCallback",
    "table_for_kind",
    "Checkpoint",
    "DatabaseCheckpointStore",
    "TransferredTrainedModel",
    "TransferredTrainedModelBase",
    "insert",
    "DatasetTransferRecipe",
    "ModelTransferRecipe",
    "TrainerTransferRecipe",
    "TrainerDatasetTransferRecipe",
    "TrainedModelTransferRecipe",
]
