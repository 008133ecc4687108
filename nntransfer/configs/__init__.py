"""Configs, experiments and transfer chains: what to train, described as data.

Nothing here touches the database until ``insert()`` is called, and then only
through :mod:`nntransfer.tables`, imported at that moment; building and
hashing configs needs neither datajoint nor a connection.
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
