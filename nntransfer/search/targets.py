"""Where a trial's configs are trained: a transfer table (chains) or a plain trained-model table.

A trial goes the way every training goes: its configs are inserted (hashed;
an existing config is found, not added), its steps planned, and the table's
``populate`` with reserved jobs trains them, so checkpoints, heartbeats and
the takeover of a dead worker's job work as for a recipe.  This module hides
the two kinds of table behind one small interface: the keys of a trial, its
insertion, one round of training, and the state of its keys.
"""

from __future__ import annotations

from ..steps import step_key


def target_for(table):
    """The training target for ``table`` (a class or instance; None is ``TransferredTrainedModel``)."""
    from .. import tables

    if table is None:
        table = tables.TransferredTrainedModel
    if isinstance(table, type):
        table = table()
    if isinstance(table, tables.TransferredTrainedModelBase):
        return TransferTarget(table)
    if isinstance(table, tables.TrainedModelBase):
        return PlainTarget(table)
    raise TypeError(f"a search trains through a TrainedModelBase or TransferredTrainedModelBase table, got {table!r}.")


class _Target:
    populate_options: dict = {}

    def __init__(self, table):
        self.table = table

    @property
    def connection(self):
        return self.table.connection

    @property
    def schema(self) -> str:
        return self.table.database

    def done(self, keys: list) -> list:
        """The rows of ``keys`` that are trained."""
        return (self.table & keys).to_dicts() if keys else []

    def train(self, keys: list) -> dict:
        """Train what is ready among ``keys`` with reserved jobs; DataJoint's populate result."""
        return self.table.populate(keys, reserve_jobs=True, suppress_errors=True, return_exception_objects=True,
                                   **self.populate_options)

    def take_over(self, keys: list, orphan_timeout: float) -> None:
        """Give jobs among ``keys`` whose worker went silent for ``orphan_timeout`` s back to the queue."""
        self.table.jobs.refresh(keys, orphan_timeout=orphan_timeout)

    def jobs(self, keys: list) -> dict:
        """``{key tuple: (status, message)}`` of the jobs of ``keys``."""
        rows = self.table.jobs.restrict(keys, semantic_check=False).to_dicts() if keys else []
        return {self.identity(row): (row["status"], row.get("error_message") or "") for row in rows}

    def output(self, row: dict) -> dict:
        return self.table.fetch_output(self.identity_key(row))


class TransferTarget(_Target):
    """Trials as chains in a ``TransferredTrainedModelBase`` table; shared steps are one row."""

    populate_options = {"plan": False}

    def keys(self, experiment) -> tuple[list, list]:
        """All step keys of the trial's chain (step 0 first, seed by seed) and the last step's key per seed."""
        steps = experiment.all_steps()
        last = [experiment.steps(seed)[-1] for seed in experiment.seeds]
        return steps, last

    def insert(self, experiment, planned_by: str, fabrikant=None) -> None:
        from ..tables import insert

        insert(experiment, fabrikant=fabrikant, table=self.table, planned_by=planned_by)

    def planned_by(self, keys: list) -> list:
        """Who first planned each of ``keys`` (the plan table keeps the first planner of a step)."""
        return (self.table.plan_table() & keys).to_dicts() if keys else []

    @staticmethod
    def identity(row: dict) -> tuple:
        return tuple(sorted(step_key(row).items()))

    @staticmethod
    def identity_key(row: dict) -> dict:
        return step_key(row)


class PlainTarget(_Target):
    """Trials of a single Experiment in a ``TrainedModelBase`` table (nnfabrik's hypersearch does this)."""

    FIELDS = ("dataset_fn", "dataset_hash", "model_fn", "model_hash", "trainer_fn", "trainer_hash", "seed")

    def keys(self, experiment) -> tuple[list, list]:
        if len(experiment) != 1:
            raise TypeError("a chain of steps needs a TransferredTrainedModelBase table; this one trains single steps.")
        keys = experiment.experiments[0].keys()
        return keys, keys

    def insert(self, experiment, planned_by: str, fabrikant=None) -> None:
        from ..tables import insert

        insert(experiment.experiments[0], fabrikant=fabrikant)

    def planned_by(self, keys: list) -> list:
        return []

    @classmethod
    def identity(cls, row: dict) -> tuple:
        return tuple((name, int(row[name]) if name == "seed" else row[name]) for name in cls.FIELDS)

    @classmethod
    def identity_key(cls, row: dict) -> dict:
        return dict(cls.identity(row))
