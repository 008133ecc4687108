"""Configs, experiments and transfer chains: what to train, described as data.

Configs describe, validate and hash; they never touch the database.  The
table layer inserts them (``nntransfer.insert(config_or_experiment)``, the one
insertion path, which ``add_entry`` uses too), so building and hashing configs
needs neither datajoint nor a connection.
"""

from nntransfer.configs.base import Config, DatasetConfig, ModelConfig, TrainerConfig
from nntransfer.configs.experiment import Experiment, TransferExperiment
from nntransfer.configs.functions import config_class_for

__all__ = [
    "Config",
    "DatasetConfig",
    "ModelConfig",
    "TrainerConfig",
    "Experiment",
    "TransferExperiment",
    "config_class_for",
]
