"""nnfabrik's ``TransferredTrainedModelBase`` on nntransfer's transfer table.

Declared as in nnfabrik's transfer notebook (and tutorial 3, seed 000)::

    @schema
    class TransferredTrainedModel(TransferredTrainedModelBase):
        table_comment = "Transferred trained models"
        nnfabrik = nnfabrik

    TransferredTrainedModel.transfer_recipe = [DatasetTransferRecipe()]
    TransferredTrainedModel.populate("transfer_step=1")

Steps are planned and run as nntransfer's :mod:`nntransfer.tables.transfer`
does.  As in nnfabrik, every step receives the previous step's model state,
and a step flagged ``data_transfer`` hands on its generated data in addition
(``state_with_data = True``), so a distilled student can start from the
teacher's weights and learn from its logits.  The parts keep nnfabrik's
names: ``DataStorage`` is the generated data, ``CollapsedHistory()`` lists
each done step's key with the ``next_collapsed_history`` of its successors.
"""

from __future__ import annotations

from ....tables.transfer import TransferredTrainedModelBase as _CoreTransferredTrainedModelBase
from ..trained_model import NnfabrikTemplate

__all__ = ["TransferredTrainedModelBase"]


class _HistoryView:
    """nnfabrik's ``CollapsedHistory`` part as a view: each done step's key and ``next_collapsed_history``."""

    def __init__(self, owner):
        self._owner = owner

    def _query(self):
        return self._owner().proj(next_collapsed_history="successor_history")

    def __call__(self):
        return self._query()

    def __and__(self, restriction):
        return self._query() & restriction

    def __sub__(self, restriction):
        return self._query() - restriction

    def __len__(self):
        return len(self._query())

    def __getattr__(self, name):
        return getattr(self._query(), name)

    def __repr__(self):
        return repr(self._query())

    def _repr_html_(self):
        return self._query()._repr_html_()


class _CollapsedHistory:
    def __get__(self, instance, owner):
        return _HistoryView(owner)


class _DataStorage:
    """nnfabrik's name of the part that holds the generated data (``TransferData`` here)."""

    def __get__(self, instance, owner):
        return None if owner.__dict__.get("_nnfabrik_template") else owner.TransferData


class TransferredTrainedModelBase(NnfabrikTemplate, _CoreTransferredTrainedModelBase):
    """nnfabrik's template of a transfer table (see the module docstring)."""

    _nnfabrik_template = True
    table_comment = "Transferred trained models"
    state_with_data = True
    CollapsedHistory = _CollapsedHistory()
    DataStorage = _DataStorage()

    def get_prev_key(self, key):
        """The previous step of ``key`` as a restriction of this table (empty at step 0)."""
        previous = self.plan_table().previous_key(key if isinstance(key, dict) else key.fetch1("KEY"))
        return self & previous if previous is not None else self.proj() - self

    def get_full_config(self, key=None, include_state_dict=True, include_trainer=True):
        """As for a trained model, with the previous step's state (and generated data) a step starts from."""
        if key is None:
            key = self.fetch1("KEY")
        result = super().get_full_config(key, include_state_dict=include_state_dict, include_trainer=include_trainer)
        previous = self.plan_table().previous_key(key)
        if previous is None:
            return result
        if include_state_dict and (self.ModelStorage & previous):
            result["state_dict"] = self.fetch_state_dict(previous)
            result["model_config"]["transfer"] = True
        if previous["data_transfer"] and (self.TransferData & previous):
            result["dataset_config"]["transfer_data"] = self.fetch_transfer_data(previous)
        return result
