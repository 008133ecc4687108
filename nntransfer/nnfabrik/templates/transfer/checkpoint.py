"""nnfabrik's ``templates.transfer.checkpoint``: a transfer table whose trainers checkpoint through ``cb``.

As for :mod:`nntransfer.nnfabrik.templates.checkpoint`: the ``cb`` of every
nntransfer table answers nnfabrik's checkpoint protocol from nntransfer's
checkpoint table, which ``my_checkpoint`` returns.
"""

from __future__ import annotations

from ..checkpoint import my_checkpoint
from .transferred_trained_model import TransferredTrainedModelBase

__all__ = ["TransferredTrainedModelChkptBase", "my_checkpoint"]


class TransferredTrainedModelChkptBase(TransferredTrainedModelBase):
    """nnfabrik's checkpointing transfer template (see the module docstring)."""

    _nnfabrik_template = True
    checkpoint_table = None
    keys = ["model_fn", "model_hash", "dataset_fn", "dataset_hash", "trainer_fn", "trainer_hash", "collapsed_history"]
