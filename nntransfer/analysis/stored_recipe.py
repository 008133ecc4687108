"""A recipe rebuilt from what the database stores of it, so that ``nntransfer report`` need not import it.

Importing a recipe's module imports its config classes and, through their
functions, the trainer and torch: more than a second, spent to learn what
the database holds already.  When a recipe is inserted, each of its steps is
recorded as the recipe's (:mod:`nntransfer.tables.membership`) with the
``successor_history`` its successors carry, and planned with its full key and
``planned_by = "<recipe>: <chain>"`` (the first chain that planned it); the
config tables hold each config's function, values and comment.
:func:`stored_recipe` rebuilds from these, in four queries of rows whatever
the recipe's size, the part of a recipe that
:func:`nntransfer.analysis.report.recipe_results` and the report read: its
name, its steps, its chains with their seeds, step keys and configs.

Chains are found by linking each step to the one before it (its
``collapsed_history`` is that step's ``successor_history``): a step that no
step of the recipe follows ends one chain for one seed, named after the chain
that planned it.  What the database cannot tell, and so differs from the
imported recipe:

* the order of chains and seeds in the module: chains come in name order,
  seeds in ascending order;
* a chain that is the beginning of another chain of the recipe (or repeats
  it exactly) ends at a step that other steps follow: it is shown only
  within the longer chain (or under the name that planned it first);
* a chain whose last step was planned first by another recipe is named
  after this recipe, and a name is cut where ``"<recipe>: <chain>"`` passed
  the 255 characters of ``planned_by``; two different chains that end up
  with one name are told apart by a number (``"name (2)"``);
* values that JSON has no type for: a value the config class holds as a
  tuple (a field declared ``tuple[...]``, such as the standard trainer's
  ``final_splits``) is stored, and comes back, as a list: the same JSON and
  hash, but a list in the report where the dashboard of the imported recipe
  shows a tuple;
* the order of a config's values is the database's (JSON objects keep
  none), not the class's;
* descriptive fields other than ``comment`` are not stored, so
  :meth:`StoredConfig.to_dict` gives the hashed values only.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from ..errors import DatabaseError
from ..hashing import from_jsonable
from ..steps import CONFIG_KINDS, step_key


@dataclass(frozen=True)
class StoredConfig:
    """One config row: the ``kind``, ``fn``, ``comment``, ``key`` and hashed values a config object offers."""

    kind: str
    fn: str
    hash: str
    comment: str
    values: dict

    @property
    def key(self) -> dict:
        """The row's primary key, as ``Config.key`` gives it: ``{"<kind>_fn": ..., "<kind>_hash": ...}``."""
        return {f"{self.kind}_fn": self.fn, f"{self.kind}_hash": self.hash}

    def to_dict(self, include_descriptive: bool = False) -> dict:
        """The stored (hashed) values, a copy; the descriptive fields besides ``comment`` were never stored."""
        if include_descriptive:
            raise DatabaseError(f"the database stores no descriptive fields of {self.fn} besides its comment; "
                                "import the recipe for them.")
        return copy.deepcopy(self.values)


@dataclass(frozen=True)
class StoredExperiment:
    """One step of a chain: its three configs, dataset, model and trainer, as ``Experiment.configs`` orders them."""

    configs: tuple


@dataclass(frozen=True)
class StoredChain:
    """A chain of the recipe: its steps' configs, its seeds and, per seed, its full step keys (step 0 first)."""

    experiments: tuple
    seeds: tuple
    keys: dict

    def __len__(self) -> int:
        return len(self.experiments)

    def steps(self, seed: int) -> list:
        """The full keys of this chain's steps for ``seed``, step 0 first (a copy)."""
        if seed not in self.keys:
            raise DatabaseError(f"seed {seed!r} is not one of this chain's stored seeds {list(self.seeds)}.")
        return [dict(key) for key in self.keys[seed]]


@dataclass(frozen=True)
class StoredRecipe:
    """A recipe as the database stores it: its ``name`` and ``chains`` ``{name: StoredChain}``, in name order."""

    name: str
    chains: dict

    def steps(self) -> list:
        """Every step key of every chain and seed, steps of one chain in order (shared steps once per chain)."""
        return [key for chain in self.chains.values() for seed in chain.seeds for key in chain.steps(seed)]


def stored_recipe(table, name: str) -> StoredRecipe:
    """Recipe ``name`` of the transfer table ``table``, rebuilt from its stored steps and configs (see module doc).

    A recipe with no stored steps has no chains.
    """
    members = table.recipe_step_table() & {"recipe": name}
    rows = [{**step_key(row), "planned_by": row["planned_by"], "successor_history": row["successor_history"]}
            for row in (table.plan_table().proj("planned_by") * members.proj("successor_history")).to_dicts()]
    configs = _configs(table, members)
    by_successor = {row["successor_history"]: row for row in rows}
    followed = {row["collapsed_history"] for row in rows if row["transfer_step"] > 0}
    found: dict = {}  # {(chain name, its configs and flags per step): {seed: keys}}
    for end in rows:
        if end["successor_history"] in followed:
            continue
        path = [end]
        while path[0]["transfer_step"] > 0:
            previous = by_successor.get(path[0]["collapsed_history"])
            if previous is None:
                raise DatabaseError(
                    f"the stored steps of recipe {name!r} lack the step before {step_key(path[0])}; insert the "
                    "recipe again (`nntransfer run` or `nntransfer worker`) to record all its steps.")
            path.insert(0, previous)
        shape = tuple(tuple((row[f"{kind}_fn"], row[f"{kind}_hash"]) for kind in CONFIG_KINDS) + (row["data_transfer"],)
                      for row in path)
        found.setdefault((_chain_name(end["planned_by"], name), shape), {})[end["seed"]] = [step_key(row)
                                                                                            for row in path]
    chains = {}
    for (chain_name, shape), keys in sorted(found.items(), key=lambda item: item[0]):
        unique, number = chain_name, 1
        while unique in chains:
            number += 1
            unique = f"{chain_name} ({number})"
        experiments = tuple(
            StoredExperiment(tuple(configs[(kind, *step[index])] for index, kind in enumerate(CONFIG_KINDS)))
            for step in shape)
        chains[unique] = StoredChain(experiments, tuple(sorted(keys)), {seed: keys[seed] for seed in sorted(keys)})
    return StoredRecipe(name, chains)


def _chain_name(planned_by: str, recipe: str) -> str:
    """The chain named in ``planned_by`` (``"<recipe>: <chain>"``); the recipe's name when another recipe planned it."""
    prefix = f"{recipe}: "
    return planned_by[len(prefix):] if planned_by.startswith(prefix) else recipe


def _configs(table, members) -> dict:
    """``{(kind, fn, hash): StoredConfig}`` of every config the recipe's steps use, one query per config table."""
    configs = {}
    for kind in CONFIG_KINDS:
        config_table = getattr(table, f"{kind}_table")()
        fn, hash_, stored, comment = f"{kind}_fn", f"{kind}_hash", f"{kind}_config", f"{kind}_comment"
        for row in (config_table & members).proj(stored, comment).to_dicts():
            configs[(kind, row[fn], row[hash_])] = StoredConfig(kind, row[fn], row[hash_], row[comment] or "",
                                                                from_jsonable(row[stored]))
    return configs
