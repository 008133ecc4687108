"""nnfabrik's ``templates``: trained-model, data-info, scoring and transfer tables to declare in your schema."""

from .scoring import ScoringBase
from .trained_model import DataInfoBase, TrainedModelBase
from .transfer.transferred_trained_model import TransferredTrainedModelBase

__all__ = ["TrainedModelBase", "DataInfoBase", "ScoringBase", "TransferredTrainedModelBase"]
