"""Where a trial's configs are trained: a transfer table (chains) or a plain trained-model table.

A trial goes the way every training goes: its configs are inserted (hashed;
an existing config is found, not added), its steps planned, and the table's
``populate`` with reserved jobs trains them, so checkpoints, heartbeats and
the takeover of a dead worker's job work as for a recipe.  This module hides
the two kinds of table behind one small interface: the keys of a trial, its
insertion, one round of training, and the state of its keys.
"""

from __future__ import annotations

from ..steps import CONFIG_KINDS, step_key


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


def _identity(config) -> tuple:
    return config.kind, config.fn, config.hash


class Insertion:
    """A trial's configs, checked: the rows of those new to the database, to be written by ``insert``."""

    def __init__(self, configs: list, rows: list):
        self.configs, self.rows = configs, rows
        self.new = {(table.kind, row[f"{table.kind}_fn"], row[f"{table.kind}_hash"]) for table, row in rows}

    def has_new_config(self, key: dict) -> bool:
        """Whether a config of the step ``key`` is not stored yet, so that the step cannot be trained."""
        return any((kind, key[f"{kind}_fn"], key[f"{kind}_hash"]) in self.new for kind in CONFIG_KINDS)


class _Target:
    populate_options: dict = {}

    def __init__(self, table):
        self.table = table
        self._stored = set()  # configs and seeds that this search's earlier trials stored or found
        self._fabrikant = None

    @property
    def connection(self):
        return self.table.connection

    @property
    def schema(self) -> str:
        return self.table.database

    def done(self, keys: list) -> list:
        """The rows of ``keys`` that are trained."""
        return (self.table & keys).to_dicts() if keys else []

    def check(self, experiment) -> "Insertion":
        """Check the trial's configs before anything is written; which of them are new to the database.

        The configs an earlier trial of this search stored are neither checked
        nor looked up again: a config never changes under its hash.
        """
        from ..tables.insertion import checked_config_rows

        configs = [config for config in self.configs(experiment) if _identity(config) not in self._stored]
        return Insertion(configs, checked_config_rows(configs))

    def insert(self, insertion: "Insertion", experiment, planned_by: str, queue: list, fabrikant=None) -> None:
        """Insert the trial's new configs, seeds and plan, and queue the jobs of ``queue``, in one transaction.

        What :func:`nntransfer.tables.insert` does, less what repeats from
        trial to trial: the fabrikant is resolved once, each table gets one
        INSERT, and the trial's jobs are queued directly
        (``WorkerJobs.queue``) instead of by DataJoint's refresh of the whole
        queue.
        """
        from ..tables import Fabrikant, Seed

        if self._fabrikant is None or fabrikant is not None:
            self._fabrikant = Fabrikant.resolve(fabrikant)
        writes = {}
        for table, row in insertion.rows:
            writes.setdefault(type(table), (table, []))[1].append({**row, f"{table.kind}_fabrikant": self._fabrikant})
        seeds = [{"seed": seed} for seed in experiment.seeds if ("seed", seed) not in self._stored]
        writes[Seed] = (Seed(), seeds)
        for table, rows in self.plan_rows(experiment, planned_by):
            writes.setdefault(type(table), (table, []))[1].extend(rows)
        jobs = self.table.jobs  # declared before the transaction, on first use
        with self.connection.transaction:
            for table, rows in writes.values():
                if rows:
                    table.insert(rows, skip_duplicates=True)
            self.after_insert(experiment)
            jobs.queue(queue)
        self._stored.update(_identity(config) for config in insertion.configs)
        self._stored.update(("seed", seed) for seed in experiment.seeds)

    @staticmethod
    def configs(experiment) -> list:
        return [config for step in experiment.experiments for config in step.configs]

    def plan_rows(self, experiment, planned_by: str) -> list:
        return []

    def after_insert(self, experiment) -> None:
        """Called in the insert's transaction."""

    def train(self, keys: list) -> dict:
        """Train what is ready among ``keys`` (none of them trained yet) with reserved jobs; DataJoint's populate result.

        Their jobs were queued when the trial was inserted.
        """
        if not keys:
            return {"success_count": 0, "error_list": []}
        return self.table.populate(keys, reserve_jobs=True, refresh=False, suppress_errors=True,
                                   return_exception_objects=True, **self.populate_options)

    def take_over(self, keys: list, orphan_timeout: float) -> None:
        """Give jobs whose worker went silent for ``orphan_timeout`` s back to the queue; queue ``keys`` that lost theirs.

        Not DataJoint's ``jobs.refresh``: it judges every job against the
        whole schema (see :mod:`nntransfer.tables.queue`).  ``keys`` are not
        trained yet.
        """
        from ..tables.queue import give_back_orphans

        give_back_orphans(self.table, orphan_timeout)
        self.table.jobs.queue(keys)

    def jobs(self, keys: list) -> dict:
        """``{key tuple: (status, message)}`` of the jobs of ``keys``."""
        rows = self.table.jobs.restrict(keys, semantic_check=False).to_dicts() if keys else []
        return {self.identity(row): (row["status"], row.get("error_message") or "") for row in rows}

    def output(self, row: dict) -> dict:
        return self.table.fetch_output(self.identity_key(row))


class TransferTarget(_Target):
    """Trials as chains in a ``TransferredTrainedModelBase`` table; shared steps are one row."""

    populate_options = {"plan": False, "mark_ready": False}

    def keys(self, experiment) -> tuple[list, list]:
        """All step keys of the trial's chain (step 0 first, seed by seed) and the last step's key per seed."""
        steps = experiment.all_steps()
        last = [experiment.steps(seed)[-1] for seed in experiment.seeds]
        return steps, last

    def plan_rows(self, experiment, planned_by: str) -> list:
        plan = self.table.plan_table()
        return [(plan, self.table.plan_rows(experiment.steps(seed), planned_by)) for seed in experiment.seeds]

    def after_insert(self, experiment) -> None:
        """A later step whose previous step is trained already is flagged ready.

        Steps stored from now on flag their successors themselves, so the
        trial's training rounds need no ``mark_ready``.
        """
        if len(experiment) > 1:
            self.table.mark_ready()

    def done(self, keys: list) -> list:
        """The rows of ``keys`` that are trained, each with who first planned it (``planned_by``)."""
        return (self.table * self.table.plan_table().proj("planned_by") & keys).to_dicts() if keys else []

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

    def planned_by(self, keys: list) -> list:
        return []

    @classmethod
    def identity(cls, row: dict) -> tuple:
        return tuple((name, int(row[name]) if name == "seed" else row[name]) for name in cls.FIELDS)

    @classmethod
    def identity_key(cls, row: dict) -> dict:
        return dict(cls.identity(row))
