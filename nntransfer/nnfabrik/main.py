"""nnfabrik's ``main``: the Fabrikant, Seed, Dataset, Model, Trainer and Experiments tables, and ``my_nnfabrik``.

Importing this module connects and declares the tables, as importing
nnfabrik's did: in the schema named by ``dj.config["nnfabrik.schema_name"]``
(set through :mod:`nntransfer.nnfabrik.dj`) or ``nnfabrik_core``.  The
connection is nntransfer's: a server when one is configured (``dj.config``
set in code, ``DJ_HOST`` or ``datajoint.json``), else the embedded
PostgreSQL.  nntransfer's own schema (``NNTRANSFER_SCHEMA``, default
``nntransfer``) is activated too: it holds the checkpoints of every
training.

The config tables key their rows with nnfabrik's ``make_hash`` of the
config as given (``hashing = "nnfabrik"``), so the hashes in nnfabrik's
tutorials and the keys of an existing nnfabrik database are valid here.  The
configs are still checked before they are stored (the function is imported,
unknown keywords and values that cannot be stored are refused), and stored
as JSON.  ``add_entry`` has nnfabrik's current signature::

    Dataset().add_entry(dataset_fn, dataset_config, dataset_comment="", dataset_fabrikant=None,
                        skip_duplicates=False, return_pk_only=True)

(nnfabrik before 0.2 put the fabrikant before the comment: pass both by keyword
when porting such code).  A callable is accepted as ``*_fn`` and stored by its
dotted path.
"""

from __future__ import annotations

import types
import warnings
from typing import MutableMapping, Optional, Tuple, Union

from .. import tables as _core
from ..db import import_datajoint
from ..errors import DuplicateEntryError, FabrikantError
from ..hashing import from_jsonable
from ..resolve import allow_packages
from ..tables.checkpoints import Checkpoint as _CoreCheckpoint
from ..tables.fabrik import ConfigTable, _config_definition
from ..tables.insertion import complete_config, new_config_rows
from ..tables.recipes import TransferRecipe
from .builder import get_data, get_model, get_trainer, resolve_data, resolve_model, resolve_trainer
from .dj import config as _config
from .utility.dj_helpers import CustomSchema, Schema, cleanup_numpy_scalar, make_hash

dj = import_datajoint()

__all__ = ["schema", "Fabrikant", "Seed", "Dataset", "Model", "Trainer", "Experiments", "my_nnfabrik", "make_hash",
           "cleanup_numpy_scalar", "CustomSchema", "Schema", "resolve_model", "resolve_data", "resolve_trainer",
           "get_data", "get_model", "get_trainer"]


class ExistingEntryError(DuplicateEntryError, ValueError):
    """nnfabrik's ``add_entry`` found the entry and ``skip_duplicates`` is False."""


class _Fabrikant(dj.Manual):
    definition = """
    # people who add entries and train models
    fabrikant_name: varchar(32)   # short name, referenced by the other tables
    ---
    full_name = "": varchar(128)
    email = "": varchar(128)
    affiliation = "": varchar(128)
    dj_username: varchar(64)      # database user name
    """

    def add_entry(self, name, email, affiliation, full_name="", dj_username=None, skip_duplicates=False,
                  return_pk_only=True):
        """Add a fabrikant (the current database user when ``dj_username`` is None); return its key or row."""
        if dj_username is None:
            dj_username = self.connection.get_user().split("@")[0]
        row = dict(fabrikant_name=name, full_name=full_name, email=email, affiliation=affiliation,
                   dj_username=dj_username)
        existing = (self & {"fabrikant_name": name}) or (self & {"dj_username": dj_username})
        if existing:
            row = existing.fetch1()
            if not skip_duplicates:
                raise ExistingEntryError(f"Corresponding entry already exists: {row}; pass skip_duplicates=True.")
            warnings.warn("Corresponding entry found. Skipping...")
        else:
            self.insert1(row)
        return {"fabrikant_name": row["fabrikant_name"]} if return_pk_only else row

    @classmethod
    def get_current_user(cls):
        """The fabrikant of the current database user, added on first use (nnfabrik returned None)."""
        username = cls.connection.get_user().split("@")[0]
        rows = (cls & {"dj_username": username}).to_dicts()
        if rows:
            return rows[0]["fabrikant_name"]
        cls.insert1({"fabrikant_name": username[:32], "dj_username": username}, skip_duplicates=True)
        return username[:32]

    @classmethod
    def resolve(cls, name):
        if name is None:
            return cls.get_current_user()
        if not (cls & {"fabrikant_name": name}):
            known = sorted(row["fabrikant_name"] for row in cls.to_dicts())
            raise FabrikantError(
                f"Fabrikant {name!r} is not in {cls.full_table_name} (known: {known}); add it with "
                "Fabrikant().add_entry(name, email, affiliation) or Fabrikant().insert1({...})."
            )
        return name


class _Seed(dj.Manual):
    definition = """
    # random seeds that are passed to the model and dataset builders
    seed: int32
    """


class _NnfabrikConfigTable(ConfigTable):
    """nnfabrik's methods of the config tables (``fn_config``, ``resolve_fn``, ``add_entry``), keyed by make_hash."""

    hashing = "nnfabrik"
    _fabrikant = None  # the Fabrikant table the declared class refers to (set when it is declared)

    @property
    def fn_config(self):
        """``(fn, config)`` of the one entry this (restricted) table holds, numpy scalars cleaned up."""
        fn, config = self.fetch1(f"{self.kind}_fn", f"{self.kind}_config")
        return fn, cleanup_numpy_scalar(from_jsonable(config))

    def _add_entry(self, fn, config, comment, fabrikant, skip_duplicates, return_pk_only):
        kind = self.kind
        if callable(fn):
            fn = f"{fn.__module__}.{fn.__qualname__}"
            if fn.startswith("__main__."):
                warnings.warn(f"{fn} is defined in this notebook or script: only this process can train or load "
                              "its entries (no other process can import '__main__'); move it into a module to "
                              "train it with workers.")
        if isinstance(fn, str) and "." in fn:
            allow_packages(fn.split(".")[0])  # named here by the user: trusted in this process
        self.resolve_fn(fn)
        key, row = complete_config(self, fn, config, comment)
        fabrikants = type(self)._fabrikant or Fabrikant
        if not new_config_rows(self, [row]):
            if not skip_duplicates:
                raise ExistingEntryError(
                    f"Corresponding entry already exists: {key}; pass skip_duplicates=True to get its key.")
            warnings.warn("Corresponding entry found. Skipping...")
        else:
            self.insert1({**row, f"{kind}_fabrikant": fabrikants.resolve(fabrikant)})
        if return_pk_only:
            return key
        found = (self & key).fetch1()
        found[f"{kind}_config"] = from_jsonable(found[f"{kind}_config"])
        return found


class _Dataset(_NnfabrikConfigTable, dj.Manual):
    kind = "dataset"
    definition = _config_definition("dataset", "nnfabrik")

    @staticmethod
    def resolve_fn(fn_name):
        return resolve_data(fn_name)

    def add_entry(self, dataset_fn, dataset_config, dataset_comment="", dataset_fabrikant=None,
                  skip_duplicates=False, return_pk_only=True):
        """Insert a dataset config (nnfabrik's signature); return its key (or the row)."""
        return self._add_entry(dataset_fn, dataset_config, dataset_comment, dataset_fabrikant, skip_duplicates,
                               return_pk_only)

    def get_dataloader(self, seed=None, key=None):
        """The dataloaders of the one entry ``key`` selects.

        ``seed`` overrides the config's; without either, the seed of ``key``
        (a trained model's key has one) is used, so a ported ScoringBase
        builds its data with the model's seed.
        """
        key = key or {}
        dataset_fn, dataset_config = (self & key).fn_config
        if seed is not None:
            dataset_config["seed"] = seed
        elif "seed" not in dataset_config and "seed" in key:
            dataset_config["seed"] = key["seed"]
        return get_data(dataset_fn, dataset_config)


class _Model(_NnfabrikConfigTable, dj.Manual):
    kind = "model"
    definition = _config_definition("model", "nnfabrik")

    @staticmethod
    def resolve_fn(fn_name):
        return resolve_model(fn_name)

    def add_entry(self, model_fn, model_config, model_comment="", model_fabrikant=None, skip_duplicates=False,
                  return_pk_only=True):
        """Insert a model config (nnfabrik's signature); return its key (or the row)."""
        return self._add_entry(model_fn, model_config, model_comment, model_fabrikant, skip_duplicates,
                               return_pk_only)

    def build_model(self, dataloaders=None, seed=None, key=None, data_info=None):
        """The model of the one entry ``key`` selects, built from ``dataloaders`` or ``data_info``."""
        if dataloaders is None and data_info is None:
            raise ValueError("dataloaders and data_info can not both be None; pass one of them to build the model.")
        model_fn, model_config = (self & (key or {})).fn_config
        return get_model(model_fn, model_config, dataloaders=dataloaders, seed=seed, data_info=data_info)


class _Trainer(_NnfabrikConfigTable, dj.Manual):
    kind = "trainer"
    definition = _config_definition("trainer", "nnfabrik")

    @staticmethod
    def resolve_fn(fn_name):
        return resolve_trainer(fn_name)

    def add_entry(self, trainer_fn, trainer_config, trainer_comment="", trainer_fabrikant=None,
                  skip_duplicates=False, return_pk_only=True):
        """Insert a trainer config (nnfabrik's signature); return its key (or the row)."""
        return self._add_entry(trainer_fn, trainer_config, trainer_comment, trainer_fabrikant, skip_duplicates,
                               return_pk_only)

    def get_trainer(self, key=None, build_partial=True):
        """The trainer with its config bound, or ``(trainer_fn, trainer_config)`` with ``build_partial=False``."""
        trainer_fn, trainer_config = (self & (key or {})).fn_config
        if build_partial:
            return get_trainer(trainer_fn, trainer_config)
        return get_trainer(trainer_fn), trainer_config


class _Experiments(dj.Manual):
    definition = """
    # collections of trained models that form an experiment
    experiment_name: varchar(100)                     # name of experiment
    ---
    -> Fabrikant.proj(experiment_fabrikant='fabrikant_name')
    experiment_comment = "": varchar(2000)            # short description
    experiment_ts = CURRENT_TIMESTAMP: datetime
    """

    class Restrictions(dj.Part):
        definition = """
        # the dataset, model and trainer combinations of an experiment
        -> master
        -> Dataset
        -> Trainer
        -> Model
        ---
        experiment_restriction_ts = CURRENT_TIMESTAMP: datetime
        """

    def add_entry(self, experiment_name, experiment_fabrikant, experiment_comment, restrictions,
                  skip_duplicates=False):
        with self.connection.transaction:
            self.insert1(dict(experiment_name=experiment_name, experiment_fabrikant=experiment_fabrikant,
                              experiment_comment=experiment_comment), skip_duplicates=skip_duplicates)
            self.Restrictions.insert([{"experiment_name": experiment_name, **r} for r in restrictions],
                                     skip_duplicates=skip_duplicates, ignore_extra_fields=True)


TEMPLATES = {"Seed": _Seed, "Fabrikant": _Fabrikant, "Model": _Model, "Dataset": _Dataset, "Trainer": _Trainer,
             "Experiments": _Experiments}


def _declare(schema, template, context):
    table = type(template.__name__.lstrip("_"), (template,), {"__doc__": template.__doc__,
                                                               "__module__": context.get("__name__", __name__)})
    return schema(table, context=context)


def _schema_name() -> str:
    return _config.get("nnfabrik.schema_name") or "nnfabrik_core"


_core.activate()  # nntransfer's own schema: the checkpoints of every training
schema = CustomSchema(_schema_name())
Checkpoint = _CoreCheckpoint
_context = globals()
for _name in ("Fabrikant", "Model", "Dataset", "Trainer", "Seed", "Experiments"):
    _context[_name] = _declare(schema, TEMPLATES[_name], _context)
for _name in ("Dataset", "Model", "Trainer"):
    _context[_name]._fabrikant = Fabrikant


def my_nnfabrik(
    schema: Union[str, Schema],
    additional_tables: Tuple = (),
    use_common_fabrikant: bool = True,
    use_common_seed: bool = False,
    module_name: Optional[str] = None,
    context: Optional[MutableMapping] = None,
    spawn_existing_tables: bool = False,
) -> Optional[types.ModuleType]:
    """nnfabrik's tables (and ``additional_tables``) declared in ``schema``; a new module, or into ``context``.

    Seed, Model, Dataset and Trainer are declared in ``schema``; Fabrikant is
    the common one of :mod:`nntransfer.nnfabrik.main` (or its own copy with
    ``use_common_fabrikant=False``), Seed the common one with
    ``use_common_seed=True``.  ``additional_tables`` are declared there too,
    referring to this schema's tables (the recipe tables of
    :mod:`nntransfer.nnfabrik.templates.transfer.recipes` then check and name
    this schema's configs).  ``Checkpoint`` (nntransfer's checkpoint table)
    and ``schema`` are put into the result as well.
    """
    if isinstance(schema, str):
        schema = CustomSchema(schema)
    module = None
    if context is None:
        module = types.ModuleType(module_name or schema.database)
        context = module.__dict__
    context["schema"] = schema
    existing = {name.strip("#_~") for name in schema.list_tables()}
    if spawn_existing_tables:
        schema.make_classes(context)
    names = ["Seed", "Fabrikant", "Model", "Dataset", "Trainer"]
    if use_common_fabrikant:
        if "fabrikant" in existing and schema.database != Fabrikant.database:
            raise ValueError(
                "The schema already contains a Fabrikant table despite setting use_common_fabrikant=True. "
                "Either rerun with use_common_fabrikant=False or remove the Fabrikant table in the schema"
            )
        context["Fabrikant"] = Fabrikant
        names.remove("Fabrikant")
    if use_common_seed:
        if "seed" in existing and schema.database != Seed.database:
            raise ValueError(
                "The schema already contains a Seed table despite setting use_common_seed=True. "
                "Either rerun with use_common_seed=False or remove the Seed table in the schema"
            )
        context["Seed"] = Seed
        names.remove("Seed")
    for name in names:
        context[name] = _declare(schema, TEMPLATES[name], context)
    for name in ("Dataset", "Model", "Trainer"):
        context[name]._fabrikant = context["Fabrikant"]
    context["Checkpoint"] = Checkpoint
    recipes = []
    for table in additional_tables:
        attributes = {"__doc__": table.__doc__, "__module__": context.get("__name__", table.__module__)}
        if issubclass(table, TransferRecipe):
            attributes.update(dataset_table=context["Dataset"], model_table=context["Model"],
                              trainer_table=context["Trainer"])
        declared = schema(type(table.__name__, (table,), attributes), context=context)
        context[table.__name__] = declared
        if issubclass(declared, TransferRecipe):
            recipes.append(declared)
    for recipe in recipes:
        recipe.recipe_group = tuple(recipes)
    return module
