"""Transfer recipes: which done steps to continue, and with what.

A recipe row for ``transfer_step`` k says: take every *done* step k-1 whose
configs match ``transfer_from``, and plan a step k with ``transfer_to``
substituted; everything else stays the same (nnfabrik's rule).  Which configs
a recipe may change is fixed by its table:

=============================  ===============================
table                          changes
=============================  ===============================
DatasetTransferRecipe          dataset
ModelTransferRecipe            model
TrainerTransferRecipe          trainer
TrainerDatasetTransferRecipe   trainer and dataset
TrainedModelTransferRecipe     dataset, model and trainer
=============================  ===============================

``transfer_from`` and ``transfer_to`` hold ``<kind>_fn`` and ``<kind>_hash``
of each changed kind; the seed is always kept.  ``transfer_from`` may also
name a ``seed`` and a ``collapsed_history``, and ``transfer_to`` the same
``seed``, to continue only those chains (sinzlab nntransfer's recipes do).
``data_transfer`` becomes the new step's flag, i.e. what *it* will hand on (see
:mod:`nntransfer.tables.transfer`).  Register recipes with
``TransferredTrainedModel.transfer_recipe = [DatasetTransferRecipe(), ...]``;
each registered recipe row plans its own successors.

Restricting a recipe table by a field of its sides works as it did in
nnfabrik, whose recipe tables had these fields as columns: ``<kind>_fn``,
``<kind>_hash`` and ``seed`` select by ``transfer_to``; ``prev_<kind>_fn``,
``prev_<kind>_hash``, ``prev_seed`` and ``prev_collapsed_history`` by
``transfer_from``: ``DatasetTransferRecipe() & {"dataset_fn": ...}``.
"""

from __future__ import annotations

import logging
import re

from ..db import import_datajoint
from ..errors import ConfigError, TransferError
from ..hashing import config_hash
from ..steps import CONFIG_FIELDS, plan_row
from .fabrik import CONFIG_TABLES, schema
from .restrictions import SafeRestriction

dj = import_datajoint()
log = logging.getLogger(__name__)

_HASH = re.compile(r"[0-9a-f]{32}")
SIDE_OPTIONS = {"transfer_from": ("seed", "collapsed_history"), "transfer_to": ("seed",)}
"""Fields a side may hold besides the configs it changes, to continue only some chains."""
_FN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+")
_PLAN_COLUMNS = {"transfer_step", "collapsed_history", "data_transfer", "prev_collapsed_history", "ready"}
"""Columns that mark a transfer table's plan (see :mod:`nntransfer.tables.transfer`)."""

_RECIPE_DEFINITION = """
    # {comment}
    transfer_step: int16        # the step this recipe plans (>= 1)
    recipe_hash: char(32)       # hash of transfer_from, transfer_to and data_transfer
    ---
    data_transfer: bool         # the new step hands on its generated data (1) or its model state (0)
    transfer_from: json         # configs of the done step to continue
    transfer_to: json           # configs that replace them
    recipe_comment = "": varchar(256)
    recipe_ts = CURRENT_TIMESTAMP: datetime
    """


class TransferRecipe(SafeRestriction):
    """Behaviour of every recipe table (a mixin); ``kinds`` are the configs it changes.

    ``recipe_group``: the recipe classes of the same schema (the five of this
    module when empty; :func:`nntransfer.nnfabrik.main.my_nnfabrik` sets its
    own); ``<kind>_table``: the config table whose entries the sides name
    (this module's when not set).
    """

    kinds: tuple = ()
    recipe_group: tuple = ()

    def config_table(self, kind: str):
        """The config table of ``kind`` in this recipe's schema."""
        return getattr(self, f"{kind}_table", None) or CONFIG_TABLES[kind]

    def restrict(self, restriction, semantic_check=True):
        """DataJoint's restriction, with the fields of the sides understood (see the module docstring).

        They are not columns, and DataJoint ignores what a dict names that is
        not one, so ``& {"dataset_fn": ...}`` would keep every row: such a
        dict becomes the keys of the rows whose sides match it.
        """
        return super().restrict(self._translate(restriction), semantic_check=semantic_check)

    def _side_fields(self) -> dict:
        fields = {"seed": ("transfer_to", "seed"), "prev_seed": ("transfer_from", "seed"),
                  "prev_collapsed_history": ("transfer_from", "collapsed_history")}
        for kind in self.kinds:
            for part in ("fn", "hash"):
                fields[f"{kind}_{part}"] = ("transfer_to", f"{kind}_{part}")
                fields[f"prev_{kind}_{part}"] = ("transfer_from", f"{kind}_{part}")
        return fields

    def _translate(self, restriction):
        from datajoint.condition import AndList, Not

        if isinstance(restriction, Not):
            return Not(self._translate(restriction.restriction))
        if isinstance(restriction, AndList):
            return AndList([self._translate(item) for item in restriction])
        if isinstance(restriction, (list, tuple)) and restriction and all(isinstance(r, dict) for r in restriction):
            translated = [self._translate(item) for item in restriction]
            return [key for item in translated for key in (item if isinstance(item, list) else [item])]
        if not isinstance(restriction, dict):
            return restriction
        fields = self._side_fields()
        wanted = {name: value for name, value in restriction.items() if name in fields}
        if not wanted:
            return restriction
        rest = {name: value for name, value in restriction.items() if name not in wanted}
        rows = (super().restrict(rest) if rest else self).to_dicts()
        return [{"transfer_step": row["transfer_step"], "recipe_hash": row["recipe_hash"]} for row in rows
                if all((row[fields[name][0]] or {}).get(fields[name][1]) == value for name, value in wanted.items())]

    def add_entry(self, transfer_from: dict, transfer_to: dict, transfer_step: int, data_transfer: bool = False,
                  comment: str = ""):
        """Insert a recipe; return its key, or None when ``transfer_from`` names no stored config.

        The same recipe inserted again is a no-op.  A step below 1, a step
        with no recipe for the step before it (it could never run), and a
        recipe that leads back to where it starts are errors.
        """
        name = type(self).__name__
        transfer_from = self._check_side(transfer_from, "transfer_from")
        transfer_to = self._check_side(transfer_to, "transfer_to")
        if type(transfer_step) is not int or transfer_step < 1:
            raise ConfigError(f"{name}: transfer_step must be an int >= 1 (step 0 is plain training), got {transfer_step!r}.")
        if type(data_transfer) is not bool:
            raise ConfigError(f"{name}: data_transfer must be True or False, got {data_transfer!r}.")
        if transfer_from == transfer_to:
            raise TransferError(
                f"{name}: transfer_to equals transfer_from ({transfer_from}); the recipe would continue a step with "
                "itself, a cycle. Change at least one config."
            )
        siblings = [cls() for cls in self.recipe_group] or recipe_tables()
        if (transfer_step > 1 and not any(recipe & {"transfer_step": transfer_step - 1} for recipe in siblings)
                and not self._steps_planned(transfer_step - 1, transfer_from)):
            raise TransferError(
                f"{name}: no recipe plans step {transfer_step - 1} and no transfer table has a step "
                f"{transfer_step - 1} that transfer_from {transfer_from} matches, so step {transfer_step} could "
                f"never run; add the recipe for step {transfer_step - 1} first (or plan or import those steps)."
            )
        if "seed" in transfer_to and transfer_from.get("seed", transfer_to["seed"]) != transfer_to["seed"]:
            raise ConfigError(f"{name}: transfer_to's seed {transfer_to['seed']} differs from transfer_from's "
                              f"{transfer_from['seed']}; a chain keeps its seed.")
        for kind in self.kinds:
            table = self.config_table(kind)
            to_key = {f"{kind}_fn": transfer_to[f"{kind}_fn"], f"{kind}_hash": transfer_to[f"{kind}_hash"]}
            if not table() & to_key:
                raise ConfigError(f"{name}: transfer_to names {to_key}, which is not in {table.__name__}; add it first.")
            from_key = {f"{kind}_fn": transfer_from[f"{kind}_fn"], f"{kind}_hash": transfer_from[f"{kind}_hash"]}
            if not table() & from_key:
                log.warning("%s: transfer_from %s matches no %s entry; nothing inserted.", name, from_key, table.__name__)
                return None
        key = {
            "transfer_step": transfer_step,
            "recipe_hash": config_hash({"from": transfer_from, "to": transfer_to, "data_transfer": data_transfer}),
        }
        if self & key:
            return key
        self.insert1({**key, "data_transfer": data_transfer, "transfer_from": transfer_from,
                      "transfer_to": transfer_to, "recipe_comment": comment[:256]}, skip_duplicates=True)
        return key

    def _steps_planned(self, step: int, transfer_from: dict) -> bool:
        """Whether a transfer table planned a step ``step`` on this recipe's configs that ``transfer_from`` matches.

        Steps imported by ``nntransfer import-nnfabrik`` or planned as whole
        chains (``plan_chain``, the runner) came without a recipe; a recipe
        may continue them.  Transfer tables are found by their plan tables,
        which reference the config tables (in any schema).
        """
        configs = self.config_table(self.kinds[0])()
        dependencies = configs.connection.dependencies
        dependencies.clear()  # a plan table another process declared since the graph was read counts too
        dependencies.load_all_downstream()
        for name in configs.children():
            plan = dj.FreeTable(configs.connection, name)
            if _PLAN_COLUMNS <= set(plan.heading.names) and plan & {"transfer_step": step} & transfer_from:
                return True
        return False

    def _check_side(self, side, name):
        expected = {f"{kind}_{part}" for kind in self.kinds for part in ("fn", "hash")}
        optional = set(SIDE_OPTIONS[name])
        if not isinstance(side, dict):
            raise ConfigError(f"{type(self).__name__}: {name} must be a dict with {sorted(expected)}, got {side!r}.")
        if not expected <= set(side) <= expected | optional:
            raise ConfigError(
                f"{type(self).__name__}: {name} must have the keys {sorted(expected)} (it changes "
                f"{' and '.join(self.kinds)}, everything else stays the same) and may have {sorted(optional)}; "
                f"got {sorted(side)}."
            )
        side = dict(side)
        if "seed" in side:
            if isinstance(side["seed"], bool) or not hasattr(side["seed"], "__index__"):
                raise ConfigError(f"{type(self).__name__}: {name}['seed'] must be an int, got {side['seed']!r}.")
            side["seed"] = int(side.pop("seed"))
        history = side.pop("collapsed_history", None)
        if history is not None and not (history == "" or (isinstance(history, str) and _HASH.fullmatch(history))):
            raise ConfigError(f"{type(self).__name__}: {name}['collapsed_history'] = {history!r} is not a step's "
                              "history ('' at step 0, else 32 hex digits).")
        for field, value in side.items():
            if field == "seed":
                continue
            if not isinstance(value, str):
                raise ConfigError(f"{type(self).__name__}: {name}[{field!r}] must be a str, got {value!r}.")
            form = _HASH if field.endswith("_hash") else _FN
            if not form.fullmatch(value):
                raise ConfigError(f"{type(self).__name__}: {name}[{field!r}] = {value!r} is not a "
                                  f"{'config hash (32 hex digits)' if form is _HASH else 'dotted function path'}.")
        return side if history is None else {**side, "collapsed_history": history}

    def plan_successors(self, target) -> int:
        """Plan the steps this table's recipes ask for on ``target``'s new done rows; return the count."""
        planned = 0
        for recipe in self.to_dicts():
            try:  # a row is data: one written past add_entry must not reach a restriction unchecked
                self._check_side(recipe["transfer_from"], "transfer_from")
                self._check_side(recipe["transfer_to"], "transfer_to")
            except ConfigError as error:
                raise TransferError(
                    f"the stored recipe row (transfer_step {recipe['transfer_step']}, recipe_hash "
                    f"{recipe['recipe_hash']!r}) is malformed: {error} Nothing was planned from it; delete the row "
                    "and add the recipe again with add_entry."
                ) from None
            planned += _apply(target, recipe, type(self).__name__)
        return planned


def _apply(target, recipe: dict, table_name: str) -> int:
    step = int(recipe["transfer_step"])
    data_transfer = bool(recipe["data_transfer"])
    transfer_to = recipe["transfer_to"]
    plan = target.plan_table()
    # the done rows this recipe continued already, found by the history their successors carry
    planned = plan & {"transfer_step": step, "data_transfer": int(data_transfer)} & transfer_to
    already = set(planned.to_arrays("collapsed_history"))
    sources = target & {"transfer_step": step - 1} & recipe["transfer_from"] & {
        name: value for name, value in transfer_to.items() if name == "seed"}
    new_histories = [h for h in sources.to_arrays("successor_history") if h not in already]
    rows = []
    for start in range(0, len(new_histories), 500):
        chunk = [{"successor_history": h} for h in new_histories[start:start + 500]]
        rows.extend(_successor_rows(sources & chunk, plan, recipe, table_name, target.history_hashing))
    plan.insert(rows, skip_duplicates=True)
    if rows:
        log.info("%s planned %d step-%d entries", table_name, len(rows), step)
    return len(rows)


def _successor_rows(sources, plan, recipe: dict, table_name: str, hashing: str = "canonical") -> list:
    step = int(recipe["transfer_step"])
    rows = []
    for source in sources.to_dicts():
        previous = {name: source[name] for name in plan.primary_key}
        new = {name: previous[name] for name in CONFIG_FIELDS}
        new.update(recipe["transfer_to"])
        new.update(seed=previous["seed"], transfer_step=step, data_transfer=int(bool(recipe["data_transfer"])),
                   collapsed_history=source["successor_history"])
        rows.append(plan_row(new, previous, f"{table_name} {recipe['recipe_hash']}", hashing))
    return rows


def _recipe_definition(comment: str) -> str:
    return _RECIPE_DEFINITION.format(comment=comment)


@schema
class DatasetTransferRecipe(TransferRecipe, dj.Manual):
    kinds = ("dataset",)
    definition = _recipe_definition("recipes that continue a step on another dataset")


@schema
class ModelTransferRecipe(TransferRecipe, dj.Manual):
    kinds = ("model",)
    definition = _recipe_definition("recipes that continue a step with another model")


@schema
class TrainerTransferRecipe(TransferRecipe, dj.Manual):
    kinds = ("trainer",)
    definition = _recipe_definition("recipes that continue a step with another trainer")


@schema
class TrainerDatasetTransferRecipe(TransferRecipe, dj.Manual):
    kinds = ("trainer", "dataset")
    definition = _recipe_definition("recipes that continue a step with another trainer and dataset")


@schema
class TrainedModelTransferRecipe(TransferRecipe, dj.Manual):
    kinds = ("dataset", "model", "trainer")
    definition = _recipe_definition("recipes that continue a step with other dataset, model and trainer")


def recipe_tables() -> list:
    """Every recipe table, for checks that look across them."""
    return [DatasetTransferRecipe(), ModelTransferRecipe(), TrainerTransferRecipe(),
            TrainerDatasetTransferRecipe(), TrainedModelTransferRecipe()]
