"""nntransfer: transfer-learning experiments stored in a relational database.

Importing the package is cheap and side-effect free: it opens no database
connection and declares no table.  Names are imported on first use, so
``import nntransfer`` does not pull in torch or datajoint either.
``nntransfer.activate("my_schema")`` connects and declares the tables.
"""

from importlib import import_module

__version__ = "0.1.0"

_LAZY = {
    "activate": "nntransfer.tables",
    "insert": "nntransfer.tables",
    "schema": "nntransfer.tables",
    "Fabrikant": "nntransfer.tables",
    "Seed": "nntransfer.tables",
    "Dataset": "nntransfer.tables",
    "Model": "nntransfer.tables",
    "Trainer": "nntransfer.tables",
    "TrainedModel": "nntransfer.tables",
    "TrainedModelBase": "nntransfer.tables",
    "DatasetConfig": "nntransfer.configs",
    "ModelConfig": "nntransfer.configs",
    "TrainerConfig": "nntransfer.configs",
    "Experiment": "nntransfer.configs",
    "TransferExperiment": "nntransfer.configs",
    "resolve_fn": "nntransfer.resolve",
    "allow_packages": "nntransfer.resolve",
    "get_data": "nntransfer.builder",
    "get_model": "nntransfer.builder",
    "get_trainer": "nntransfer.builder",
    "get_all_parts": "nntransfer.builder",
    "results": "nntransfer.analysis.results",
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name):
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'nntransfer' has no attribute {name!r}")
