"""nnfabrik's ``templates.transfer``."""

from .transferred_trained_model import TransferredTrainedModelBase

__all__ = ["TransferredTrainedModelBase"]
