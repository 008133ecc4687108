"""nnfabrik's scoring templates: a score (and per-unit scores) for every trained model or dataset entry.

Subclass, set ``trainedmodel_table`` (or, for measures of a dataset,
``dataset_table``) and ``measure_function``, and decorate with your schema::

    @schema
    class TestAccuracy(ScoringBase):
        trainedmodel_table = TrainedModel
        measure_function = staticmethod(per_class_accuracy)   # (model, dataloaders, per_unit=True, **kwargs)
        measure_attribute = "accuracy"

The dataloaders come from ``dataset_table().get_dataloader(key=key)`` (by
default the trained model's dataset table), built with the trained model's
seed; ``model_cache`` / ``data_cache`` take a :class:`~nntransfer.nnfabrik.utility.nnf_helper.FabrikCache`.
"""

from __future__ import annotations

import numpy as np

from ...db import import_datajoint
from .. import main

dj = import_datajoint()

__all__ = ["ScoringBase", "SummaryScoringBase", "MeasuresBase", "SummaryMeasuresBase"]


class _DefaultDatasetTable:
    """``dataset_table`` defaults to the trained model table's."""

    def __get__(self, instance, owner):
        trained = owner.trainedmodel_table
        return None if trained is None else trained.dataset_table


def _units_part(measure_attribute: str) -> type:
    return type("Units", (dj.Part,), {
        "definition": f"""
        # scores of individual units
        -> master
        unit_index: int32
        ---
        unit_{measure_attribute}: float64
        """,
        "__doc__": "Per-unit scores.",
    })


class ScoringBase(dj.Computed):
    """A score of every trained model: the mean of ``measure_function``'s per-unit scores, and the units."""

    trainedmodel_table = None
    dataset_table = _DefaultDatasetTable()
    measure_dataset = "test"
    measure_attribute = "score"
    function_kwargs = {}
    model_cache = None
    data_cache = None
    table_comment = "A template table for storing results/scores of a TrainedModel"
    Units = None
    _per_unit = True

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        source = "self.trainedmodel_table" if cls._source() == "trained" else "self.dataset_table"
        cls.definition = f"""
        # {cls.table_comment}
        -> {source}
        ---
        {cls.measure_attribute}: float64
        {cls.measure_attribute}_ts = CURRENT_TIMESTAMP: datetime
        """
        if not cls._per_unit:
            cls.Units = None
        elif "Units" not in cls.__dict__:  # a part belongs to one master: each table gets its own
            cls.Units = _units_part(cls.measure_attribute)

    @classmethod
    def _source(cls) -> str:
        return "trained"

    @staticmethod
    def measure_function(dataloaders, model, per_unit=True):
        raise NotImplementedError("Scoring Function has to be implemented")

    def get_model(self, key=None):
        if key is None:
            key = self.fetch1("KEY")
        if self.model_cache is None:
            return self.trainedmodel_table().load_model(key=key, include_state_dict=True, include_dataloader=False)
        return self.model_cache.load(key=key, include_state_dict=True, include_dataloader=False)

    def get_dataloaders(self, key=None):
        if key is None:
            key = self.fetch1("KEY")
        if self.data_cache is None:
            dataloaders = self.dataset_table().get_dataloader(key=key)
        else:
            dataloaders = self.data_cache.load(key=key)
        return dataloaders[self.measure_dataset]

    def get_overall_score(self, unit_scores):
        return float(np.mean(unit_scores))

    def insert_unit_scores(self, key, unit_scores):
        self.Units.insert([{**key, "unit_index": index, f"unit_{self.measure_attribute}": float(score)}
                           for index, score in enumerate(unit_scores)], ignore_extra_fields=True)

    def make(self, key):
        dataloaders = self.get_dataloaders(key=key)
        model = self.get_model(key=key)
        unit_scores = self.measure_function(model=model, dataloaders=dataloaders, per_unit=True,
                                            **self.function_kwargs)
        self.insert1({**key, self.measure_attribute: self.get_overall_score(unit_scores)}, ignore_extra_fields=True)
        self.insert_unit_scores(key, unit_scores)


class SummaryScoringBase(ScoringBase):
    """One score per trained model, no per-unit scores."""

    _per_unit = False

    def make(self, key):
        dataloaders = self.get_dataloaders(key=key)
        model = self.get_model(key=key)
        score = self.measure_function(model=model, dataloaders=dataloaders, **self.function_kwargs)
        self.insert1({**key, self.measure_attribute: float(score)}, ignore_extra_fields=True)


class MeasuresBase(ScoringBase):
    """A measure of every dataset entry (descriptive statistics), per unit and as their mean."""

    trainedmodel_table = None
    dataset_table = main.Dataset
    table_comment = "A template table for storing measures / descriptive statistics of the Dataset"

    @classmethod
    def _source(cls) -> str:
        return "dataset"

    def make(self, key):
        dataloaders = self.get_dataloaders(key=key)
        unit_scores = self.measure_function(dataloaders=dataloaders, per_unit=True, **self.function_kwargs)
        self.insert1({**key, self.measure_attribute: self.get_overall_score(unit_scores)}, ignore_extra_fields=True)
        self.insert_unit_scores(key, unit_scores)


class SummaryMeasuresBase(MeasuresBase):
    """One measure per dataset entry, no per-unit measures."""

    _per_unit = False

    def make(self, key):
        dataloaders = self.get_dataloaders(key=key)
        score = self.measure_function(dataloaders=dataloaders, **self.function_kwargs)
        self.insert1({**key, self.measure_attribute: float(score)}, ignore_extra_fields=True)
