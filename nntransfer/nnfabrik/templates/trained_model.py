"""nnfabrik's ``TrainedModelBase`` and ``DataInfoBase`` on nntransfer's tables.

Declare your table as nnfabrik's notebooks do::

    @schema
    class TrainedModel(TrainedModelBase):
        table_comment = "Trained models"
        nnfabrik = nnfabrik        # the module of my_nnfabrik(...), or "core"

Training is nntransfer's (DataJoint's three-part make, state_dicts in the
artifact store, outputs of every kind stored as given, nnfabrik's checkpoint
protocol answered by ``cb``).  What nnfabrik's template added is here:
``get_full_config``, ``load_model`` with ``data_info``, the ``call_back``
hook and the table properties resolved from ``nnfabrik``.  ``storage`` and
``comment_delimitter`` are accepted; artifacts go to nntransfer's store.
"""

from __future__ import annotations

import warnings

from ...db import import_datajoint
from ...serialization import output_from_json, output_to_json
from ...tables.trained import TrainedModelBase as _CoreTrainedModelBase
from ..builder import get_model, resolve_data
from .utility import FromNnfabrik

dj = import_datajoint()


class _UserCallBack:
    """The table's ``cb`` that also calls a ``call_back`` the user's table defines (nnfabrik's hook)."""

    def __init__(self, cb, call_back):
        self._cb = cb
        self._call_back = call_back

    def __call__(self, *args, **kwargs):
        self._cb(*args, **kwargs)
        self._call_back(**kwargs)

    def __getattr__(self, name):
        return getattr(self._cb, name)


class NnfabrikTemplate:
    """What nnfabrik's trained-model templates add to nntransfer's (a mixin placed before them)."""

    _nnfabrik_template = True
    nnfabrik = None
    model_table = FromNnfabrik("Model")
    dataset_table = FromNnfabrik("Dataset")
    trainer_table = FromNnfabrik("Trainer")
    seed_table = FromNnfabrik("Seed")
    user_table = FromNnfabrik("Fabrikant")
    data_info_table = FromNnfabrik("DataInfo")
    storage = "minio"
    comment_delimitter = "."

    def __init_subclass__(cls, **kwargs):
        if not cls.__dict__.get("_nnfabrik_template"):
            cls.model_table  # a missing context is nnfabrik's error now, not a parse error when it is declared
        super().__init_subclass__(**kwargs)

    def get_full_config(self, key=None, include_state_dict=True, include_trainer=True):
        """``model_fn``, ``model_config``, ``dataset_fn``, ``dataset_config`` (``trainer_*``, ``state_dict``) of one entry."""
        if key is None:
            key = self.fetch1("KEY")
        model_fn, model_config = (self.model_table() & key).fn_config
        dataset_fn, dataset_config = (self.dataset_table() & key).fn_config
        result = dict(model_fn=model_fn, model_config=model_config, dataset_fn=dataset_fn,
                      dataset_config=dataset_config)
        if include_trainer:
            result["trainer_fn"], result["trainer_config"] = (self.trainer_table() & key).fn_config
        if include_state_dict and (self.ModelStorage & key):
            result["state_dict"] = self.fetch_state_dict(key)
        return result

    def load_model(self, key=None, include_dataloader=True, include_trainer=False, include_state_dict=True,
                   seed: int = None):
        """nnfabrik's ``load_model``; without the dataloader the model is built from ``data_info`` when there is one."""
        if key is None:
            key = self.fetch1("KEY")
        if not include_dataloader:
            data_info = self._data_info(key)
            if data_info is not None:
                if seed is None and len(self.seed_table & key) == 1:
                    seed = (self.seed_table & key).fetch1("seed")
                model_fn, model_config = self.model_table().function_config(key)
                state = self.fetch_state_dict(key) if include_state_dict and (self.ModelStorage & key) else None
                net = get_model(model_fn, model_config, data_info=data_info, seed=seed, state_dict=state, strict=False)
                return (net, self.trainer_table().get_trainer(key)) if include_trainer else net
        return super().load_model(key, include_dataloader=include_dataloader, include_trainer=include_trainer,
                                  include_state_dict=include_state_dict, seed=seed)

    def _data_info(self, key):
        try:
            table = self.data_info_table
        except ValueError:
            return None
        rows = (table & key).to_dicts() if table is not None else []
        if not rows:
            warnings.warn("Model could not be built without the dataloader (no data_info for this entry); "
                          "the dataloader is built to create the model.")
            return None
        return output_from_json(rows[0]["data_info"])

    def call_back(self, uid=None, epoch=None, model=None, info=None, **kwargs):
        """Override to be called with what the trainer passes to ``cb`` (nnfabrik's hook; does nothing here)."""

    def callback_for(self, key, *args, **kwargs):
        cb = super().callback_for(key, *args, **kwargs)
        if type(self).call_back is NnfabrikTemplate.call_back:
            return cb
        return _UserCallBack(cb, self.call_back)


class TrainedModelBase(NnfabrikTemplate, _CoreTrainedModelBase):
    """nnfabrik's template of a trained-model table (see the module docstring)."""

    _nnfabrik_template = True
    table_comment = "Trained models"


class DataInfoBase(dj.Computed):
    """Input/output information per dataset entry, so a model can be built without its dataloaders.

    ``make`` calls ``dataset_fn(**dataset_config, return_data_info=True)``;
    the result (dicts of shapes, arrays, ...) is stored as given.
    """

    _nnfabrik_template = True
    nnfabrik = None
    dataset_table = FromNnfabrik("Dataset")
    user_table = FromNnfabrik("Fabrikant")
    table_comment = "Table containing information about i/o dimensions and statistics, per data_key in dataset"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.definition = f"""
        # {cls.table_comment}
        -> self.dataset_table
        ---
        data_info: json                  # per data key: dimensions and statistics (stored as given)
        -> [nullable] self.user_table
        datainfo_ts = CURRENT_TIMESTAMP: datetime
        """

    def make(self, key):
        dataset_fn, dataset_config = (self.dataset_table() & key).fn_config
        data_info = resolve_data(dataset_fn)(**dataset_config, return_data_info=True)
        self.insert1({**key, "data_info": output_to_json(data_info),
                      "fabrikant_name": self.user_table.get_current_user()})

    def fetch_data_info(self, key=None):
        return output_from_json((self & (key or {})).fetch1("data_info"))


__all__ = ["TrainedModelBase", "DataInfoBase"]
