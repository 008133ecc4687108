"""TransferredTrainedModel: chains of trainings, each step starting from the one before.

A row is one step of a chain: its dataset, model, trainer and seed, its
``transfer_step`` (0 for the first training), its ``collapsed_history`` (one
hash of every earlier step's key, ``""`` at step 0) and its ``data_transfer``
flag.

What ``data_transfer`` means: **a step's flag says what it hands to the next
step.**  ``True``: the data it generated (its trainer's
``output["transfer_data"]``), which the next step receives as
``dataset_config["transfer_data"]``.  ``False``: its model state, which the
next step's freshly built model receives through a partial load
(:func:`nntransfer.transfer.loading.load_partial`).  nnfabrik's tutorial is
written with this meaning (the logit-generating step 1 is flagged, the student
at step 2 is not); the row's ``received`` column and :meth:`lineage` say what
each step actually got.

A table with ``state_with_data = True`` hands on the model state of a flagged
step too, as nnfabrik did (it gave every step the previous state and the
generated data in addition): the next step then receives both
(``received = "state_and_data"``), so a distilled student starts from the
teacher's weights and learns from its logits.  A state that fits nothing of
such a student is reported in its load report, not an error, since the data
is what it was handed for.  :mod:`nntransfer.nnfabrik` declares its transfer
tables so; the default is False.

How the partial load is steered: the *model* config may hold a ``transfer``
dict, ``{"rename": {old_prefix: new_prefix}, "include": [...], "exclude":
[...]}`` (see :mod:`nntransfer.transfer.patterns`), e.g. ``{"exclude":
["classifier"]}`` to reset the head.  It is taken out before the model
function is called.  The load report is stored in ``load_report``; a load that
matches nothing is an error.

Why a table of planned steps: DataJoint 2 builds a Computed table's job keys
from its foreign keys, so every row to compute is first *planned* in a
companion Manual table ``<TableName>Plan`` (declared next to the table,
automatically).  ``key_source`` is then "planned steps at step 0 or whose
previous step is done", one indexed lookup.  Planning happens in
:meth:`populate`: with no recipes registered, every dataset x model x trainer
x seed becomes a step-0 plan (as nnfabrik does); with recipes, each recipe row
for step k plans successors for the *done* step-(k-1) rows it matches that it
has not planned yet (found by an indexed anti-lookup, not a join over the
history).  The runner (:mod:`nntransfer.runner`) plans whole chains at once.
"""

from __future__ import annotations

import inspect
import logging

from ..configs.functions import check_table_options
from ..resolve import resolve_fn
from ..db import import_datajoint
from ..errors import ConfigError, TransferError
from ..steps import CONFIG_FIELDS, plan_row, previous_from_plan_row, step_key, successor_history
from ..serialization import state_dict_from_bytes, transfer_data_from_bytes
from . import membership
from .conflicts import retried_on_conflict
from .fabrik import schema
from .lineage import Lineage, deleted_item
from .locks import schema_lock
from .pruning import PRUNED
from .restrictions import SafeRestriction
from .trained import TrainingMixin

dj = import_datajoint()
log = logging.getLogger(__name__)


STEP_STATES = ("done", "running", "pending", "blocked", "error", "pruned")
"""The states of a planned step, in the order ``nntransfer status`` shows them."""

RECEIVED_NOTHING = ""
RECEIVED_STATE = "model_state"
RECEIVED_DATA = "transfer_data"
RECEIVED_BOTH = "state_and_data"


def _plan_definition(target_comment: str) -> str:
    previous = "\n".join(f'    prev_{name} = "": varchar(128)' for name in CONFIG_FIELDS)
    return f"""
    # planned steps of {target_comment}; a step runs once the step before it is done
    transfer_step: int16              # 0: first training; k: k-th transfer
    -> self.dataset_table
    -> self.model_table
    -> self.trainer_table
    -> self.seed_table
    collapsed_history: varchar(32)    # hash of all earlier steps (empty at step 0)
    data_transfer: int8               # what this step hands on: its generated data (1) or its model state (0)
    ---
{previous}
    prev_data_transfer = null: int8   # what the previous step hands on (null at step 0)
    prev_collapsed_history = "": varchar(32)
    ready = 0: int8                   # 1 once the previous step is done (always at step 0)
    planned_by = "": varchar(255)     # the recipe or runner that planned it
    planned_ts = CURRENT_TIMESTAMP: datetime
    index(ready)
    index(collapsed_history)
    """


class PlannedStepBase(SafeRestriction):
    """Behaviour of a plan table (a mixin; the tables are made per trained-model table)."""

    def previous_key(self, key: dict) -> dict | None:
        """The full key of the step before ``key`` (None at step 0, without a query)."""
        if int(key["transfer_step"]) == 0:
            return None
        return previous_from_plan_row((self & step_key(key)).fetch1())


class _Companion:
    """Class attribute for a companion table (plan, recipes, recipe steps), declared in the table's schema on first use.

    The trained-model table's definition references its plan
    (``-> self.plan_table``), so declaring the table declares its plan first;
    the recipe tables are declared when a recipe is first inserted or read.
    A process that finds them already declared still gets usable classes.
    """

    def __init__(self, attribute: str, upgrade=None):
        self.attribute = attribute
        self.upgrade = upgrade  # brings a table declared by an earlier nntransfer up to its definition

    def __get__(self, instance, owner):
        companion = owner.__dict__.get(self.attribute)
        if companion is None:
            raise TypeError(f"{owner.__name__} is a template; subclass it and decorate the subclass with @schema.")
        database = owner.__dict__.get("database")
        if database and companion.__dict__.get("database") != database:
            context = {
                "Dataset": owner.dataset_table,
                "Model": owner.model_table,
                "Trainer": owner.trainer_table,
                "Seed": owner.seed_table,
            }
            for name in ("recipe_table", "plan_table"):  # what the recipe steps reference, declared first
                if name in companion.__dict__:
                    setattr(companion, name, getattr(owner, name))
            with schema_lock(owner._connection, database):  # processes starting at once declare it once
                owner._connection.schemas[database](companion, context=context)
                if self.upgrade is not None:
                    self.upgrade(owner(), companion)
        return companion


class TransferredTrainedModelBase(TrainingMixin, dj.Computed):
    """Template of a transfer table; subclass it in your schema with ``@schema`` (see module doc).

    ``transfer_recipe``: recipe tables (instances or classes) applied by
    :meth:`populate`; several recipes for one step each plan their own
    successors.  ``keep_checkpoints`` (see :class:`TrainingMixin`): keep a finished training's checkpoints
    (they are removed by default).
    """

    table_comment = "transferred trained models"
    transfer_recipe: list = []
    state_with_data = False
    plan_table = _Companion("_plan_class")
    recipe_table = _Companion("_recipe_class")
    recipe_step_table = _Companion("_recipe_step_class", upgrade=membership.add_successor_histories)
    recipe_chain_table = _Companion("_recipe_chain_class")

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls._plan_class = type(
            f"{cls.__name__}Plan",
            (PlannedStepBase, dj.Manual),
            {
                "definition": _plan_definition(cls.table_comment),
                "dataset_table": cls.dataset_table,
                "model_table": cls.model_table,
                "trainer_table": cls.trainer_table,
                "seed_table": cls.seed_table,
                "__doc__": f"Steps planned for {cls.__name__}; see nntransfer.tables.transfer.",
                "__module__": cls.__module__,
            },
        )
        cls._recipe_class = type(
            f"{cls.__name__}Recipe",
            (dj.Manual,),
            {"definition": membership.recipe_definition(cls.table_comment), "__module__": cls.__module__,
             "__doc__": f"Recipes of {cls.__name__}; see nntransfer.tables.membership."},
        )
        cls._recipe_step_class = type(
            f"{cls.__name__}RecipeStep",
            (dj.Manual,),
            {"definition": membership.recipe_step_definition(cls.table_comment), "__module__": cls.__module__,
             "recipe_table": None, "plan_table": None,
             "__doc__": f"Steps of each recipe of {cls.__name__}; see nntransfer.tables.membership."},
        )
        cls._recipe_chain_class = type(
            f"{cls.__name__}RecipeChain",
            (dj.Manual,),
            {"definition": membership.recipe_chain_definition(cls.table_comment), "__module__": cls.__module__,
             "recipe_table": None,
             "__doc__": f"Chains of each recipe of {cls.__name__}; see nntransfer.tables.membership."},
        )
        cls.definition = f"""
        # {cls.table_comment}
        -> self.plan_table
        ---
        comment = "": varchar(768)         # the comments of the three entries
        score = null: float64              # score of the trainer (null when not finite)
        output: json                       # output of the trainer, without transfer_data
        -> [nullable] self.user_table
        received = "": varchar(16)         # what the previous step handed over: model_state, transfer_data or nothing
        load_report = null: json           # partial load of the previous model state (LoadReport.to_dict)
        successor_history: char(32)        # collapsed_history of the steps that follow this one
        trainedmodel_ts = CURRENT_TIMESTAMP: datetime
        index(successor_history)
        """

    @property
    def history_hashing(self) -> str:
        """How ``collapsed_history`` is folded: as the config tables key their rows (see :mod:`nntransfer.hashing`)."""
        return getattr(self.dataset_table, "hashing", "canonical")

    # -- what to compute ---------------------------------------------------
    @property
    def key_source(self):
        return (self.plan_table() & "ready = 1").proj()

    def populate(self, *restrictions, plan: bool = True, mark_ready: bool = True, **kwargs):
        """Plan new steps (see :meth:`plan`; ``plan=False`` only flags ready ones), then DataJoint's populate.

        Steps whose previous step is done by this very call are planned and
        run by the next call; :func:`nntransfer.runner.populate_all` repeats until nothing is left.
        ``mark_ready=False`` (with ``plan=False``) skips even the flagging, for
        a worker that flagged once: every stored step flags its own successors.
        """
        if plan:
            self.plan()
        elif mark_ready:
            self.mark_ready()
        return super().populate(*restrictions, **kwargs)

    def plan(self) -> int:
        """Plan what the registered recipes (or, without recipes, step 0) ask for; return the count."""
        recipes = [recipe() if isinstance(recipe, type) else recipe for recipe in (self.transfer_recipe or [])]
        if recipes:
            planned = sum(recipe.plan_successors(self) for recipe in recipes)
        else:
            planned = self.plan_first_steps()
        self.mark_ready()
        return planned

    def mark_ready(self) -> int:
        """Flag the planned steps whose previous step is done; return how many were flagged.

        One indexed UPDATE: a done row's ``successor_history`` is the
        ``collapsed_history`` of every step that follows it.  A second one
        takes the flag back from steps whose previous step was deleted since,
        so no worker starts a step that has nothing to start from.  Both are
        written with EXISTS, which the servers answer by index lookups or a
        hashed (anti-)join: PostgreSQL runs ``NOT IN (subquery)`` row by row
        against the whole subquery once it outgrows ``work_mem`` (about
        100,000 done steps), hours instead of a second.  On MariaDB an UPDATE
        locks the rows it reads, so it may meet a worker storing a result in
        a deadlock; it then runs again (:mod:`.conflicts`).
        """
        quote = self.connection.adapter.quote_identifier
        plan = f"{self.plan_table().full_table_name} AS p"
        done = (f"EXISTS (SELECT 1 FROM {self.full_table_name} t "
                f"WHERE t.{quote('successor_history')} = p.{quote('collapsed_history')})")
        connection = self.connection
        retried_on_conflict(connection, lambda: connection.query(
            f"UPDATE {plan} SET {quote('ready')} = 0 "
            f"WHERE p.{quote('ready')} = 1 AND p.{quote('transfer_step')} > 0 AND NOT {done}"
        ))
        return retried_on_conflict(connection, lambda: connection.query(
            f"UPDATE {plan} SET {quote('ready')} = 1 WHERE p.{quote('ready')} = 0 AND {done}"
        ).rowcount)

    def plan_first_steps(self) -> int:
        """Plan step 0 for every dataset x model x trainer x seed that has no step-0 plan yet."""
        combinations = (
            self.dataset_table.proj() * self.model_table.proj() * self.trainer_table.proj() * self.seed_table.proj()
        )
        planned = (self.plan_table() & {"transfer_step": 0}).proj()
        new = (combinations - planned).to_dicts()
        rows = [plan_row({**key, "transfer_step": 0, "collapsed_history": "", "data_transfer": 0}, None, "step 0")
                for key in new]
        self.plan_table().insert(rows, skip_duplicates=True)
        return len(rows)

    def plan_rows(self, steps: list, planned_by: str = "") -> list:
        """The checked plan rows of one chain (full step keys, step 0 first, as TransferExperiment.steps gives)."""
        return [plan_row(key, steps[index - 1] if index else None, planned_by, self.history_hashing)
                for index, key in enumerate(steps)]

    def plan_chain(self, steps: list, planned_by: str = "") -> int:
        """Plan every step of one chain; return how many steps were new."""
        rows = self.plan_rows(steps, planned_by)
        before = len(self.plan_table())
        self.plan_table().insert(rows, skip_duplicates=True)
        return len(self.plan_table()) - before

    # -- state of planned steps ---------------------------------------------
    def step_states(self, recipe: str | None = None) -> dict:
        """Count planned steps per transfer step and state (see :data:`STEP_STATES`), in one grouped query.

        ``recipe``: count only the steps of that recipe (its membership, see
        :mod:`.membership`); None counts every planned step.  done: trained;
        running: reserved by a worker; error: failed (see :meth:`retry`);
        pending: can start (at step 0, or its previous step is done; a
        worker's next refresh flags it ``ready`` if it was planned after that);
        blocked: waiting for its previous step (a step after a failed one stays
        blocked until that one is retried); pruned: stopped early by a search
        (see :mod:`.pruning`).
        Returns ``{transfer_step: {state: count}}``.

        Why it is cheap: both "done" and "previous step done" are looked up by
        one 32-character column, never by the ten columns of a step's key.  A
        trained row's ``successor_history`` names the row (see
        :func:`~nntransfer.steps.successor_history`); a recipe's membership
        stores it for each of its steps, and a planned step's
        ``collapsed_history`` is its previous step's.  So the recipe's count
        reads its membership and the trained rows' index, not the plan, and
        costs about as much as a bare count of the recipe's steps joined with
        the plan.  The job table is joined by the full key, but only its few
        rows that decide a state.  Counting each state in a column, grouped by
        the step alone, lets the server aggregate as it reads.
        """
        quote = self.connection.adapter.quote_identifier
        history, step = quote("successor_history"), quote("transfer_step")

        def joined(alias):
            return " AND ".join(f"{alias}.{quote(name)} = s.{quote(name)}" for name in self.plan_table().primary_key)

        if recipe is None:
            source, done_on, where, args = self.plan_table().full_table_name, joined("d"), "", ()
        else:
            source, done_on = self.recipe_step_table().full_table_name, f"d.{history} = s.{history}"
            where, args = f"WHERE s.{quote('recipe')} = %s", (recipe,)
        job_state = f"j.{quote('status')}"
        pruned = f"{job_state} = 'ignore' AND LEFT(j.{quote('error_message')}, {len(PRUNED)}) = '{PRUNED}'"
        state = (
            f"CASE WHEN d.{history} IS NOT NULL THEN 'done' "
            f"WHEN {job_state} = 'reserved' THEN 'running' WHEN {job_state} = 'error' THEN 'error' "
            f"WHEN {pruned} THEN 'pruned' "
            f"WHEN s.{step} = 0 OR r.{history} IS NOT NULL THEN 'pending' ELSE 'blocked' END"
        )
        counts = ", ".join(f"SUM(CASE WHEN state = '{name}' THEN 1 ELSE 0 END)" for name in STEP_STATES)
        rows = self.connection.query(
            f"SELECT step, {counts} FROM (SELECT s.{step} AS step, {state} AS state FROM {source} s "
            f"LEFT JOIN {self.full_table_name} d ON {done_on} "  # this step is done
            f"LEFT JOIN {self.full_table_name} r ON r.{history} = s.{quote('collapsed_history')} "  # its previous one
            # only the jobs that decide a state: pending ones (one per queued step) change nothing
            f"LEFT JOIN {self._jobs_table_name()} j ON {joined('j')} AND {job_state} IN ('reserved', 'error', 'ignore') "
            f"{where}) states GROUP BY step",
            args=args,
        ).fetchall()
        return {int(row[0]): {name: int(count) for name, count in zip(STEP_STATES, row[1:])}
                for row in sorted(rows, key=lambda row: int(row[0]))}

    def _jobs_table_name(self) -> str:
        """The full name of the job table, looked up once per schema (building DataJoint's job object reads
        the schema's dependencies, which costs more than the status query itself)."""
        cached = type(self).__dict__.get("_jobs_name")
        if cached is None or cached[0] != self.database:
            cached = (self.database, self.jobs.full_table_name)
            type(self)._jobs_name = cached
        return cached[1]

    def failed_steps(self, restriction) -> list[dict]:
        """The steps in ``restriction`` whose last attempt failed: their key and error message."""
        rows = self.jobs.errors.restrict(restriction, semantic_check=False).to_dicts()
        primary = self.plan_table().primary_key
        return [{**{name: row[name] for name in primary}, "error_message": row.get("error_message", "")}
                for row in rows]

    def retry(self, restriction) -> int:
        """Clear the error records of the failed steps in ``restriction`` so workers train them again; return the count."""
        failed = self.jobs.errors.restrict(restriction, semantic_check=False)
        count = len(failed)
        failed.delete_quick()
        return count

    # -- training hooks ----------------------------------------------------
    def fetch_inputs(self, key: dict):
        previous = self.plan_table().previous_key(key)
        if previous is None:
            return None
        done = self & previous
        if not done:
            raise TransferError(f"the step before {step_key(key)} is not done: {previous}.")
        if previous["data_transfer"]:
            refs = (self.TransferData & previous).to_dicts()
            if not refs:
                raise TransferError(
                    f"the step before {step_key(key)} is flagged data_transfer=True but stored no transfer data; "
                    "its trainer must return output['transfer_data'] (e.g. nntransfer.trainer.generate)."
                )
            kind, ref = RECEIVED_DATA, refs[0]
        else:
            kind, ref = RECEIVED_STATE, (self.ModelStorage & previous).fetch1()
        _, model_config = self.model_table().get_config(key)
        options = _transfer_options(model_config.get("transfer"))
        inputs = {"previous": previous, "received": kind, "artifact": ref, "options": options}
        if kind == RECEIVED_DATA and self.state_with_data:  # the model state comes along (see the module doc)
            inputs.update(received=RECEIVED_BOTH, state_artifact=(self.ModelStorage & previous).fetch1())
        return inputs

    def inputs_for_loading(self, key: dict):
        """Rebuilding a trained step needs the previous step only when that one handed on generated data.

        A step that received a model state is rebuilt from its own stored
        state, so it loads even after its history was deleted.
        """
        previous = self.plan_table().previous_key(key)
        if previous is None or not previous["data_transfer"]:
            return None
        if not self & previous:
            raise TransferError(
                f"the step before {step_key(key)} was deleted; it handed on the generated data this step's dataset "
                "was built with, so the dataset cannot be rebuilt. Load the model alone with "
                "include_dataloader=False after building its dataloaders yourself, or train the chain again."
            )
        return self.fetch_inputs(key)

    def prepare_training(self, key: dict, dataset_config: dict, inputs):
        if inputs is None:
            return dataset_config, lambda model: {"received": RECEIVED_NOTHING}
        if inputs["received"] == RECEIVED_BOTH:
            with_data, _ = self.prepare_training(key, dataset_config, {**inputs, "received": RECEIVED_DATA})
            options = {**inputs["options"], "strict_nothing_matched": False}
            _, load_state = self.prepare_training(
                key, dataset_config,
                {**inputs, "received": RECEIVED_STATE, "artifact": inputs["state_artifact"], "options": options})
            return with_data, lambda model: {**load_state(model), "received": RECEIVED_BOTH}
        if inputs["received"] == RECEIVED_DATA:
            dataset_fn, _ = self.dataset_table().get_config(key)
            _check_accepts_transfer_data(dataset_fn)
            data = transfer_data_from_bytes(self.read_artifact(inputs["artifact"], "transfer_data"))
            return {**dataset_config, "transfer_data": data}, lambda model: {"received": RECEIVED_DATA}

        def receive(model):
            from ..transfer.loading import load_partial

            state = state_dict_from_bytes(self.read_artifact(inputs["artifact"], "model_state"))
            report = load_partial(model, state, **inputs["options"])
            return {"received": RECEIVED_STATE, "load_report": report.to_dict()}

        return dataset_config, receive

    def on_stored(self, key: dict) -> None:
        """Flag the planned successors of ``key`` ready, in the transaction that stores it (one indexed UPDATE)."""
        quote = self.connection.adapter.quote_identifier
        self.connection.query(
            f"UPDATE {self.plan_table().full_table_name} SET {quote('ready')} = 1 "
            f"WHERE {quote('ready')} = 0 AND {quote('collapsed_history')} = %s",
            args=(successor_history(key, self.history_hashing),),
        )

    def extra_row_fields(self, key: dict, extra: dict) -> dict:
        return {
            "received": extra.get("received", RECEIVED_NOTHING),
            "load_report": extra.get("load_report"),
            "successor_history": successor_history(key, self.history_hashing),
        }

    # -- reading -----------------------------------------------------------
    def lineage(self, key: dict | None = None) -> Lineage:
        """The chain of steps that led to one entry, step 0 first.

        A :class:`~nntransfer.tables.lineage.Lineage`: a list that prints
        readably and shows as a table in a notebook.  Each item has the
        step's key, its three configs and their comments, score, what it
        received (``""``, ``"model_state"``, ``"transfer_data"``), the load
        report and whether it is done.
        """
        step = (self.plan_table() & (key or {})).keys()
        if len(step) != 1:
            raise ConfigError(f"lineage needs a key that selects one planned step; {key} selects {len(step)}.")
        chain = []
        current = step_key(step[0])
        while current is not None:
            if not self.plan_table() & current:  # deleted, with its configs or by hand: what came before is unknown
                chain.append(deleted_item(current))
                break
            chain.append(self._lineage_item(current))
            current = self.plan_table().previous_key(current)
        return Lineage(chain[::-1])

    def _lineage_item(self, key: dict) -> dict:
        item = {"key": key}
        for kind, table in (("dataset", self.dataset_table), ("model", self.model_table), ("trainer", self.trainer_table)):
            item[f"{kind}_fn"], item[f"{kind}_config"], item[f"{kind}_comment"] = table().get_entry(key)
        rows = (self & key).to_dicts()
        item["done"] = bool(rows)
        row = rows[0] if rows else {}
        item["score"] = row.get("score")
        item["received"] = row.get("received")
        item["load_report"] = row.get("load_report")
        item["hands_on"] = RECEIVED_DATA if key["data_transfer"] else RECEIVED_STATE
        if key["data_transfer"] and self.state_with_data:
            item["hands_on"] = RECEIVED_BOTH
        return item

    def describe_lineage(self, key: dict | None = None) -> str:
        """:meth:`lineage` as text, one paragraph per step (see :class:`~nntransfer.tables.lineage.Lineage`)."""
        return self.lineage(key).describe()


def _transfer_options(options) -> dict:
    if options is None or isinstance(options, bool):  # nnfabrik's transfer=True: the default partial load
        return {}
    check_table_options("model", {"transfer": options})
    return dict(options)


def _check_accepts_transfer_data(dataset_fn: str) -> None:
    parameters = inspect.signature(resolve_fn(dataset_fn, "dataset_fn")).parameters
    takes_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    if "transfer_data" not in parameters and not takes_kwargs:
        raise TransferError(
            f"the previous step hands on generated data, but {dataset_fn} takes no transfer_data argument; "
            "use a dataset function that accepts transfer_data={split: {name: array}} (e.g. digits_dataset_fn), "
            "or flag the previous step data_transfer=False to hand on its model state."
        )


@schema
class TransferredTrainedModel(TransferredTrainedModelBase):
    table_comment = "transferred trained models"
