"""Recipes stored once: which planned steps belong to which recipe.

A recipe of 15,000 steps must not send 15,000 keys with every worker's job,
status or retry.  So a recipe's steps are recorded in the database when it is
inserted, in two companion tables of each transfer table (declared next to it,
like its plan table):

``<Table>Recipe``
    one row per recipe name: how many steps it has and a hash of their keys,
    so re-inserting an unchanged recipe is one query that finds nothing new;
``<Table>RecipeStep``
    one row per (recipe, planned step); workers, status, retry and results
    restrict by a join with it, never by a list of keys.  Each row also
    carries the ``successor_history`` the step's trained row will have: the
    step's name in one 32-character column, by which status finds whether
    it is done without joining on the ten columns of its key (see
    ``TransferredTrainedModelBase.step_states``);
``<Table>RecipeChain``
    one row per chain of a recipe, in the recipe's order: its name, its seeds
    and per step the configs' keys and what the step hands on.  The steps
    alone cannot tell the chains apart (a baseline ``[A]`` beside ``[A, B]``
    shares its only step with the longer chain), and the report needs them
    without importing the recipe (:mod:`nntransfer.analysis.stored_recipe`).

A recipe is named by its module (see :func:`nntransfer.runner.recipe_name`).
Re-inserting a recipe whose module changed (a chain or a seed added or taken
out, a chain renamed or moved) replaces its membership and chains; steps that
left the recipe stay planned and trained, they are just no longer counted as
the recipe's.  A recipe recorded by an nntransfer that kept no chains has
another hash (:func:`recipe_hash` covers the chains), so its next insert
records them.
"""

from __future__ import annotations

import json
import logging

from ..db import import_datajoint
from ..errors import ConfigError
from ..hashing import canonical_json, digest
from ..steps import CONFIG_FIELDS, step_key, successor_history

dj = import_datajoint()
log = logging.getLogger(__name__)

RECIPE_NAME_LENGTH = 64
"""Recipe names are module names; short, because with the step key they form
the membership's primary key, which MySQL limits to 3072 bytes."""


CHAIN_NAME_LENGTH = 255
"""Longest chain name (a key of the recipe's ``experiments``) that is recorded."""


def recipe_definition(target_comment: str) -> str:
    return f"""
    # recipes whose steps are planned in {target_comment}
    recipe: varchar({RECIPE_NAME_LENGTH})   # the recipe's name (its module)
    ---
    steps: int32                      # number of steps of the recipe when it was last inserted
    steps_hash: char(32)              # hash of those step keys and the chains: an unchanged recipe is recognised in one query
    recipe_ts = CURRENT_TIMESTAMP: datetime
    """


def recipe_step_definition(target_comment: str) -> str:
    return f"""
    # the planned steps of each recipe of {target_comment}
    -> self.recipe_table
    -> self.plan_table
    ---
    successor_history = "": char(32)  # what the step's trained row will hold in successor_history: status looks it up by this
    """


def recipe_chain_definition(target_comment: str) -> str:
    return f"""
    # the chains of each recipe of {target_comment}, in the recipe's order
    -> self.recipe_table
    chain_index: int32                # the chain's place among the recipe's experiments, 0 first
    ---
    chain: varchar({CHAIN_NAME_LENGTH})   # the chain's name in the recipe
    seeds: json                       # its seeds, in the recipe's order
    steps: json                       # per step, 0 first: the six config key fields and data_transfer (0 or 1)
    """


def chain_rows(name: str, chains: dict) -> list:
    """One row per chain of ``chains`` ``{chain name: TransferExperiment}``, in their order."""
    rows = []
    for index, (chain_name, chain) in enumerate(chains.items()):
        if len(str(chain_name)) > CHAIN_NAME_LENGTH:
            raise ConfigError(f"chain name {str(chain_name)[:40]!r}... of recipe {name!r} has {len(str(chain_name))} "
                              f"characters; at most {CHAIN_NAME_LENGTH} are stored, so shorten it.")
        steps = []
        for experiment, options in zip(chain.experiments, chain.options):
            step = {field: value for config in experiment.configs for field, value in config.key.items()}
            steps.append({**{field: step[field] for field in CONFIG_FIELDS},
                          "data_transfer": int(bool(options["data_transfer"]))})
        rows.append({"recipe": name, "chain_index": index, "chain": str(chain_name),
                     "seeds": list(chain.seeds), "steps": steps})
    return rows


def stored_chains(table, name: str) -> list:
    """The chain rows of recipe ``name`` (see :func:`recipe_chain_definition`), in the recipe's order."""
    rows = (table.recipe_chain_table() & {"recipe": name}).to_dicts(order_by="chain_index")
    return [{**row, "seeds": [int(seed) for seed in _json(row["seeds"])], "steps": _json(row["steps"])}
            for row in rows]


def _json(value):
    """A json column's value as Python objects (some drivers hand the text)."""
    return json.loads(value) if isinstance(value, (str, bytes)) else value


def distinct_steps(keys: list) -> list:
    """The step keys once each: chains of a recipe may share steps (one pretraining, several fine-tunings)."""
    seen, steps = set(), []
    for key in keys:
        step = step_key(key)
        identity = canonical_json(step)
        if identity not in seen:
            seen.add(identity)
            steps.append(step)
    return steps


def recipe_hash(keys: list, chains: list) -> str:
    """One hash of a recipe's distinct step keys (in any order) and its chain rows (in order)."""
    steps = sorted({canonical_json(step_key(key)) for key in keys})
    layout = canonical_json([{field: row[field] for field in ("chain", "seeds", "steps")} for row in chains])
    return digest("[" + ",".join(steps) + "]" + layout)


def is_unchanged(table, name: str, keys: list, chains: list) -> bool:
    """True when ``name`` was inserted with exactly these steps and chains, and all their rows still exist.

    One query: the stored hash and the counts of membership and chain rows.
    A deleted plan row takes its membership row with it (foreign key), so the
    count notices that too.
    """
    recipe, member, chain = table.recipe_table(), table.recipe_step_table(), table.recipe_chain_table()
    quote = table.connection.adapter.quote_identifier
    row = table.connection.query(
        f"SELECT {quote('steps_hash')}, {quote('steps')}, "
        f"(SELECT COUNT(*) FROM {member.full_table_name} WHERE {quote('recipe')} = %s), "
        f"(SELECT COUNT(*) FROM {chain.full_table_name} WHERE {quote('recipe')} = %s) "
        f"FROM {recipe.full_table_name} WHERE {quote('recipe')} = %s",
        args=(name, name, name),
    ).fetchone()
    if row is None:
        return False
    stored_hash, stored_steps, members, stored_chains = row
    steps = len(distinct_steps(keys))
    return (stored_hash == recipe_hash(keys, chains) and int(stored_steps) == steps == int(members)
            and int(stored_chains) == len(chains))


def membership_rows(table, name: str, keys: list, chains: list) -> tuple:
    """The recipe row and its membership rows (to write after the plan rows); ``chains``: its chain rows."""
    steps = distinct_steps(keys)
    recipe_row = {"recipe": name, "steps": len(steps), "steps_hash": recipe_hash(steps, chains)}
    members = [{"recipe": name, **key, "successor_history": successor_history(key, table.history_hashing)}
               for key in steps]
    return recipe_row, members


def add_successor_histories(table, member_class) -> None:
    """Give the membership of a schema made before its rows carried ``successor_history`` that column, filled.

    Runs once, when the membership table is first used in a process, under
    the schema's lock; a table that has the column is left alone.
    """
    member = member_class()
    if "successor_history" in member.heading.names:
        return
    log.warning("adding successor_history to %s (recipe memberships stored by an earlier nntransfer)",
                member.full_table_name)
    # the names the definition's foreign keys resolve to, as DataJoint's alter reads them back
    member.alter(prompt=False, context={"self": member_class, "Recipe": table.recipe_table, "Plan": table.plan_table})
    rows = member.proj().to_dicts()
    with table.connection.transaction:
        member.delete_quick()
        for start in range(0, len(rows), 10_000):
            member.insert([{**row, "successor_history": successor_history(row, table.history_hashing)}
                           for row in rows[start:start + 10_000]])


def replace_membership(table, name: str, keys: list, chains: list) -> None:
    """Record ``keys`` as the steps of recipe ``name`` and ``chains`` as its chain rows, replacing what was
    recorded (inside a transaction)."""
    recipe_row, members = membership_rows(table, name, keys, chains)
    recipe, member, chain = table.recipe_table(), table.recipe_step_table(), table.recipe_chain_table()
    (member & {"recipe": name}).delete_quick()
    (chain & {"recipe": name}).delete_quick()
    (recipe & {"recipe": name}).delete_quick()
    recipe.insert1(recipe_row)
    member.insert(members)
    chain.insert(chains)


def refresh_statistics(table) -> None:
    """Let the server re-estimate the sizes of the plan and membership tables after a bulk insert.

    Right after thousands of rows arrive, PostgreSQL still believes the
    tables are nearly empty and joins them row by row (seconds for a status
    of 10k steps instead of milliseconds) until its autovacuum catches up.
    """
    names = [table.plan_table().full_table_name, table.recipe_step_table().full_table_name, table.full_table_name]
    statement = "ANALYZE" if table.connection.adapter.backend == "postgresql" else "ANALYZE TABLE"
    for name in names:
        table.connection.query(f"{statement} {name}")


def restriction(table, name: str):
    """The planned steps of recipe ``name`` as a query (a join, not a list of keys).

    The plan rows of the recipe's steps rather than its membership rows: the
    trained rows and the job table refer to the plan by a foreign key, which
    lets PostgreSQL estimate a join with them.  Restricted by the membership
    directly, it guesses that a few hundred of 10,000 rows match and reads
    the plan row by row for each (seconds instead of a tenth of a second).
    """
    return (table.plan_table() & (table.recipe_step_table() & {"recipe": name}).proj()).proj()
