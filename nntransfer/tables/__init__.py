"""The database layer: the only package that imports datajoint.

Importing it declares nothing and connects nowhere: the tables hang on one
unbound schema object until :func:`activate` connects and declares them (the
pattern of DataJoint Elements).  User tables decorated with their own schema
may reference these tables once they are activated.
"""

from __future__ import annotations

import os

from ..db import connect
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


def activate(schema_name: str | None = None, *, create_tables: bool = True):
    """Connect (starting the embedded server if needed) and declare the tables.

    ``schema_name`` defaults to ``NNTRANSFER_SCHEMA`` or ``"nntransfer"``;
    it must be letters, digits and ``_``.  Calling it again with the same
    name is a no-op; returns the schema.  Processes that activate a new
    schema at the same instant (a job array's first tasks) declare it once:
    declaration runs under a lock of the database server (see :mod:`.locks`),
    the job tables included.
    """
    name = check_schema_name(schema_name or os.environ.get("NNTRANSFER_SCHEMA", DEFAULT_SCHEMA))
    connection = connect()
    with schema_lock(connection, name):
        schema.activate(name, connection=connection, create_tables=create_tables)
        if create_tables:
            TrainedModel().jobs
            TransferredTrainedModel().jobs
    return schema


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
