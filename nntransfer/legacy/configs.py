"""sinzlab nntransfer's config classes, ``Experiment``, ``TransferExperiment`` and ``Description``.

A lab's config classes keep their shape: defaults are set in ``__init__``
after ``load_kwargs`` (an attribute set by a keyword is not overwritten by the
default that follows), unset attributes read as None, and ``get_key()`` is
``{"<kind>_hash": make_hash(to_dict()), "<kind>_fn": fn}`` with nnfabrik's
``make_hash`` over every attribute, ``fn`` and ``comment`` included, so keys
written by sinzlab nntransfer are found.  The entries go into the tables of
:mod:`nntransfer.nnfabrik` (``table``, by default those of
:mod:`nntransfer.nnfabrik.main`), whose keys are nnfabrik's hashes too.

What is not carried over: ``from_json_file`` reads keys as JSON gives them
(sinzlab's decoded some with ``eval``; files written by :meth:`BaseConfig.save`
keep non-string keys exactly), and ``Experiment.from_dict`` finds config
classes among the subclasses of :class:`BaseConfig` by name (or in
``classes``) instead of in a module's globals.
"""

from __future__ import annotations

import copy
import json
import os
from collections import namedtuple
from typing import Dict, List

from ..errors import ConfigError
from ..hashing import from_jsonable, make_hash, to_jsonable
from ..steps import CONFIG_FIELDS, collapse_history

Description = namedtuple("Description", "name seed")
"""The key of a recipe's ``transfer_experiments`` dict: a name and a seed."""

_CLASSES: dict = {}


class BaseConfig:
    """Base of a lab's config classes (see the module docstring)."""

    config_name = ""
    table = None
    fn = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _CLASSES[cls.__name__] = cls

    def __init__(self, **kwargs):
        self.load_kwargs(**kwargs)
        self.comment = ""
        self.conditional_assignment()

    def __setattr__(self, key, value, overwrite=False):
        """Set ``key`` unless a value is there already (a keyword given to the constructor wins over a default)."""
        if self.__dict__.get(key) is None or overwrite:
            if isinstance(value, dict) and value.get("DEFAULT EMPTY", False):
                value = {}
            object.__setattr__(self, key, value)

    def __getattr__(self, name):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return None

    def update(self, setting: Dict):
        """Overwrite attributes with ``setting``, then run :meth:`conditional_assignment` again."""
        for key, value in setting.items():
            object.__setattr__(self, key, value)
        self.conditional_assignment()

    def conditional_assignment(self):
        """Override to set attributes that depend on others."""

    def load_kwargs(self, **kwargs):
        for key, value in kwargs.items():
            self.__setattr__(key, value)

    def to_dict(self) -> dict:
        """Every attribute, and ``fn``: what is stored and hashed."""
        output = copy.deepcopy(self.__dict__)
        output["fn"] = self.fn
        return output

    def get_key(self) -> dict:
        return {f"{self.config_name}_hash": make_hash(self.to_dict()), f"{self.config_name}_fn": self.fn}

    def _table(self):
        if self.table is not None:
            return self.table
        from ..nnfabrik import main

        tables = {"dataset": main.Dataset, "model": main.Model, "trainer": main.Trainer}
        if self.config_name not in tables:
            raise ConfigError(f"{type(self).__name__}.config_name is {self.config_name!r}; set it to 'dataset', "
                              "'model' or 'trainer', or set table to the config table.")
        return tables[self.config_name]()

    def add_to_table(self):
        """Insert the config into its table (``table``) unless it is there."""
        if self.fn is None:
            raise ConfigError(f"{type(self).__name__}.fn is not set; set it to the function's dotted path.")
        table = self._table()
        if not table & self.get_key():
            table.add_entry(self.fn, self.to_dict(), self.comment, None, skip_duplicates=True)

    def to_json_string(self) -> str:
        """JSON of :meth:`to_dict`; keys that are not strings are written so that they come back exactly."""
        return json.dumps(to_jsonable(self.to_dict(), type(self).__name__), indent=2, sort_keys=True) + "\n"

    def to_json_file(self, json_file_path):
        with open(json_file_path, "w", encoding="utf-8") as writer:
            writer.write(self.to_json_string())

    def save(self, save_directory):
        """Write :meth:`to_json_string` to ``<save_directory>/<config_name>``."""
        if not os.path.isdir(save_directory):
            raise ConfigError(f"{save_directory!r} is not a folder; save writes the config into a folder.")
        self.to_json_file(os.path.join(save_directory, self.config_name))

    @classmethod
    def from_dict(cls, config_dict: Dict, **kwargs):
        return_unused = kwargs.pop("return_unused_kwargs", False)
        values = {key: value for key, value in config_dict.items() if key != "fn"}
        config = cls(**values)
        unused = {}
        for key, value in kwargs.items():
            if key in config.__dict__:
                object.__setattr__(config, key, value)
            else:
                unused[key] = value
        return (config, unused) if return_unused else config

    @classmethod
    def from_json_file(cls, json_file: str):
        """The config saved in ``json_file`` (read as JSON; nothing in it is evaluated)."""
        with open(json_file, encoding="utf-8") as reader:
            return cls.from_dict(from_jsonable(json.load(reader)))

    def __eq__(self, other):
        return isinstance(other, BaseConfig) and self.__dict__ == other.__dict__

    def __repr__(self):
        return f"{type(self).__name__} {self.to_json_string()}"


class DatasetConfig(BaseConfig):
    config_name = "dataset"


class ModelConfig(BaseConfig):
    config_name = "model"


class TrainerConfig(BaseConfig):
    config_name = "trainer"


class Experiment(BaseConfig):
    """A dataset, a model and a trainer config and a seed.

    ``seed_table``: where :meth:`add_to_table` puts the seed (by default
    :mod:`nntransfer.nnfabrik.main`'s ``Seed``; set it with the configs'
    ``table`` when they go into the tables of ``my_nnfabrik``).
    """

    config_name = "config"
    seed_table = None

    def __init__(self, dataset, model, trainer, seed):
        object.__setattr__(self, "dataset", dataset)
        object.__setattr__(self, "model", model)
        object.__setattr__(self, "trainer", trainer)
        object.__setattr__(self, "seed", seed)
        object.__setattr__(self, "comment", trainer.comment)

    def update(self, setting: Dict):
        """``{"dataset"|"model"|"trainer": {attribute: value}}``: update those configs."""
        unknown = sorted(set(setting) - {"dataset", "model", "trainer"})
        if unknown:
            raise ConfigError(f"an update names {unknown}; it takes 'dataset', 'model' and 'trainer' dicts.")
        self.dataset.update(setting.get("dataset", {}))
        self.model.update(setting.get("model", {}))
        self.trainer.update(setting.get("trainer", {}))

    def get_key(self) -> dict:
        key = {**self.dataset.get_key(), **self.model.get_key(), **self.trainer.get_key()}
        key["seed"] = self.seed
        return key

    def get_restrictions(self) -> list:
        return [self.get_key()]

    def add_to_table(self):
        """The three configs and the seed."""
        self.dataset.add_to_table()
        self.model.add_to_table()
        self.trainer.add_to_table()
        if self.seed_table is None:
            from ..nnfabrik.main import Seed as seed_table
        else:
            seed_table = self.seed_table
        seed_table().insert1({"seed": self.seed}, skip_duplicates=True)

    def to_dict(self) -> dict:
        return {kind: {type(config).__name__: config.to_dict()}
                for kind, config in (("dataset", self.dataset), ("model", self.model), ("trainer", self.trainer))} | {
            "seed": self.seed}

    @classmethod
    def from_dict(cls, config_dict: Dict, classes: dict | None = None) -> "Experiment":
        """Rebuild from :meth:`to_dict`; config classes are found by name among BaseConfig's subclasses."""
        known = {**_CLASSES, **(classes or {})}
        parts = []
        for kind in ("dataset", "model", "trainer"):
            ((name, values),) = config_dict[kind].items()
            if name not in known:
                raise ConfigError(f"no config class {name!r} is defined (or given in classes); define or import it.")
            parts.append(known[name].from_dict(values))
        return cls(*parts, config_dict.get("seed", 42))


class TransferExperiment(Experiment):
    """Experiments run one after the other, each starting from what the one before handed on.

    ``update``: one dict per step, ``{"dataset"|"model"|"trainer": {...}}``,
    applied to that step's configs.  ``get_restrictions(level)`` is the key of
    step ``level`` (its ``collapsed_history`` folded with nnfabrik's hashing,
    ``data_transfer`` from each trainer's ``data_transfer``).
    """

    def __init__(self, configs: List[Experiment], update: List = ()):
        object.__setattr__(self, "configs", list(configs))
        comments = []
        for config in self.configs:
            comments.append(config.comment or "")
            object.__setattr__(config, "comment", " -> ".join(comments))
        object.__setattr__(self, "comment", " -> ".join(comments))
        self.update(update)

    def update(self, settings: List):
        if len(settings) > len(self.configs):
            raise ConfigError(f"update has {len(settings)} entries for {len(self.configs)} steps.")
        for config, setting in zip(self.configs, settings):
            config.update(setting or {})

    def steps(self) -> list:
        """The full key of every step (with ``transfer_step`` and ``data_transfer``), step 0 first."""
        keys, history = [], ""
        for level, config in enumerate(self.configs):
            if keys:
                history = collapse_history(history, keys[-1], "nnfabrik")
            configs_key = config.get_key()
            key = {name: configs_key[name] for name in CONFIG_FIELDS}
            keys.append({**key, "seed": config.seed, "transfer_step": level,
                         "data_transfer": int(bool(config.trainer.data_transfer)), "collapsed_history": history})
        return keys

    def get_restrictions(self, level: int = 0) -> dict:
        if len(self.configs) <= level:
            return {}
        key = dict(self.steps()[level])
        del key["transfer_step"], key["data_transfer"]
        return key

    def add_to_table(self):
        for config in self.configs:
            config.add_to_table()

    @classmethod
    def from_dict(cls, config_dicts: list, classes: dict | None = None) -> "TransferExperiment":
        return cls([Experiment.from_dict(values, classes) for values in config_dicts])

    def to_dict(self) -> list:
        return [config.to_dict() for config in self.configs]

    def __len__(self):
        return len(self.configs)
