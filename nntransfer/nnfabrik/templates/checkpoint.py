"""nnfabrik's ``templates.checkpoint``: ``TrainedModelChkptBase`` and ``my_checkpoint``.

nnfabrik's checkpoint protocol (``cb(uid=..., epoch=..., model=...,
state={"action": "save" | "last" | "best", ...})``) is answered by the ``cb``
of every nntransfer table (:mod:`nntransfer.tables.checkpoint_protocol`),
into nntransfer's checkpoint table.  As in nnfabrik, a finished training's
checkpoints are removed unless its trainer config holds
``keep_checkpoints=True`` (or the table sets ``keep_checkpoints = True``,
which keeps those of every training).  So ``TrainedModelChkptBase`` is
``TrainedModelBase`` with nnfabrik's attribute names, and ``my_checkpoint``
returns that checkpoint table.
"""

from __future__ import annotations

from ...tables.checkpoints import Checkpoint
from .trained_model import TrainedModelBase

__all__ = ["TrainedModelChkptBase", "my_checkpoint"]


def my_checkpoint(nnfabrik=None):
    """The table that holds the checkpoints of every training (``Checkpoint()`` shows them)."""
    return Checkpoint


class TrainedModelChkptBase(TrainedModelBase):
    """A trained-model table whose trainers checkpoint through ``cb`` (see the module docstring)."""

    _nnfabrik_template = True
    checkpoint_table = None  # nnfabrik's place for my_checkpoint's table; checkpoints go to nntransfer's
    keys = ["model_fn", "model_hash", "dataset_fn", "dataset_hash", "trainer_fn", "trainer_hash"]
