"""A recipe read back from the database, so that ``nntransfer report`` and ``ui`` need not import it.

Importing a recipe's module imports its config classes and, through their
functions, the trainer and torch: more than a second, spent to learn what the
database holds already.  When a recipe is inserted its chains are recorded in
order, with their seeds and per step the configs' keys and what the step hands
on (:mod:`nntransfer.tables.membership`); the config tables hold each config's
values and comment.  :func:`stored_recipe` rebuilds from these, in four
queries whatever the recipe's size, the part of a recipe that
:func:`nntransfer.analysis.report.recipe_results` and the report read: its
name, its steps, its chains with their seeds, step keys and configs.

What the database does not keep, and so differs from the imported recipe:
descriptive config fields other than ``comment`` (:meth:`StoredConfig.to_dict`
gives the hashed values, as the report asks for), the chains' descriptions,
and Python types JSON has no name for (a tuple comes back as a list; the report
shows both alike).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from ..errors import DatabaseError
from ..hashing import from_jsonable
from ..steps import CONFIG_KINDS, chain_keys
from ..tables import membership


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
    """A chain of the recipe: its steps' configs, what each step hands on, and its seeds."""

    experiments: tuple
    data_transfer: tuple
    seeds: tuple

    def __len__(self) -> int:
        return len(self.experiments)

    def steps(self, seed: int) -> list:
        """The full keys of this chain's steps for ``seed``, step 0 first, as ``TransferExperiment.steps`` gives."""
        if seed not in self.seeds:
            raise DatabaseError(f"seed {seed!r} is not one of this chain's stored seeds {list(self.seeds)}.")
        configs = [{field: value for config in experiment.configs for field, value in config.key.items()}
                   for experiment in self.experiments]
        return chain_keys(configs, seed, list(self.data_transfer))

    def all_steps(self) -> list:
        """:meth:`steps` for every seed, in seed order (one flat list)."""
        return [key for seed in self.seeds for key in self.steps(seed)]


@dataclass(frozen=True)
class StoredRecipe:
    """A recipe as the database stores it: its ``name`` and ``chains`` ``{name: StoredChain}``, in its order."""

    name: str
    chains: dict

    def steps(self) -> list:
        """Every step key of every chain and seed, steps of one chain in order (shared steps once per chain)."""
        return [key for chain in self.chains.values() for key in chain.all_steps()]


def stored_recipe(table, name: str) -> StoredRecipe | None:
    """Recipe ``name`` of the transfer table ``table`` as recorded at its last insert (see module doc).

    None when no chains of it are recorded: it was never inserted, or by an
    nntransfer that kept no chains (its next insert records them).
    """
    rows = membership.stored_chains(table, name)
    if not rows:
        return None
    configs = _configs(table, name)
    chains = {}
    for row in rows:
        experiments = []
        for step in row["steps"]:
            try:
                experiments.append(StoredExperiment(tuple(
                    configs[(kind, step[f"{kind}_fn"], step[f"{kind}_hash"])] for kind in CONFIG_KINDS)))
            except KeyError as missing:
                raise DatabaseError(
                    f"chain {row['chain']!r} of recipe {name!r} names the config {missing.args[0]}, which is no "
                    "longer stored; insert the recipe again (`nntransfer run` or `nntransfer worker`).") from None
        chains[row["chain"]] = StoredChain(tuple(experiments), tuple(step["data_transfer"] for step in row["steps"]),
                                           tuple(row["seeds"]))
    return StoredRecipe(name, chains)


def _configs(table, name: str) -> dict:
    """``{(kind, fn, hash): StoredConfig}`` of every config of the recipe's steps, one query per config table."""
    members = table.recipe_step_table() & {"recipe": name}
    configs = {}
    for kind in CONFIG_KINDS:
        config_table = getattr(table, f"{kind}_table")()
        fn, hash_, stored, comment = f"{kind}_fn", f"{kind}_hash", f"{kind}_config", f"{kind}_comment"
        for row in (config_table & members).proj(stored, comment).to_dicts():
            configs[(kind, row[fn], row[hash_])] = StoredConfig(kind, row[fn], row[hash_], row[comment] or "",
                                                                from_jsonable(row[stored]))
    return configs
