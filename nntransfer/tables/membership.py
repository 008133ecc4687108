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
    restrict by a join with it, never by a list of keys.

A recipe is named by its module (see :func:`nntransfer.runner.recipe_name`).
Re-inserting a recipe whose module changed (a chain or a seed added or taken
out) replaces its membership; steps that left the recipe stay planned and
trained, they are just no longer counted as the recipe's.
"""

from __future__ import annotations

from ..db import import_datajoint
from ..hashing import canonical_json, digest
from ..steps import STEP_KEY_FIELDS, step_key

dj = import_datajoint()

RECIPE_NAME_LENGTH = 64
"""Recipe names are module names; short, because with the step key they form
the membership's primary key, which MySQL limits to 3072 bytes."""


def recipe_definition(target_comment: str) -> str:
    return f"""
    # recipes whose steps are planned in {target_comment}
    recipe: varchar({RECIPE_NAME_LENGTH})   # the recipe's name (its module)
    ---
    steps: int32                      # number of steps of the recipe when it was last inserted
    steps_hash: char(32)              # hash of those step keys: an unchanged recipe is recognised in one query
    recipe_ts = CURRENT_TIMESTAMP: datetime
    """


def recipe_step_definition(target_comment: str) -> str:
    return f"""
    # the planned steps of each recipe of {target_comment}
    -> self.recipe_table
    -> self.plan_table
    """


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


def steps_hash(keys: list) -> str:
    """One hash of a recipe's distinct step keys, independent of their order."""
    rows = sorted({canonical_json(step_key(key)) for key in keys})
    return digest("[" + ",".join(rows) + "]")


def is_unchanged(table, name: str, keys: list) -> bool:
    """True when ``name`` was inserted with exactly these steps and all its membership rows still exist.

    One query: the stored hash and the count of membership rows.  A deleted
    plan row takes its membership row with it (foreign key), so the count
    notices that too.
    """
    recipe, member = table.recipe_table(), table.recipe_step_table()
    quote = table.connection.adapter.quote_identifier
    row = table.connection.query(
        f"SELECT {quote('steps_hash')}, {quote('steps')}, "
        f"(SELECT COUNT(*) FROM {member.full_table_name} WHERE {quote('recipe')} = %s) "
        f"FROM {recipe.full_table_name} WHERE {quote('recipe')} = %s",
        args=(name, name),
    ).fetchone()
    if row is None:
        return False
    stored_hash, stored_steps, members = row
    steps = len(distinct_steps(keys))
    return stored_hash == steps_hash(keys) and int(stored_steps) == steps == int(members)


def membership_rows(table, name: str, keys: list) -> tuple:
    """The recipe row and its membership rows (to write after the plan rows)."""
    steps = distinct_steps(keys)
    recipe_row = {"recipe": name, "steps": len(steps), "steps_hash": steps_hash(steps)}
    members = [{"recipe": name, **{field: key[field] for field in STEP_KEY_FIELDS}} for key in steps]
    return recipe_row, members


def replace_membership(table, name: str, keys: list) -> None:
    """Record ``keys`` as the steps of recipe ``name``, replacing what was recorded (inside a transaction)."""
    recipe_row, members = membership_rows(table, name, keys)
    recipe, member = table.recipe_table(), table.recipe_step_table()
    (member & {"recipe": name}).delete_quick()
    (recipe & {"recipe": name}).delete_quick()
    recipe.insert1(recipe_row)
    member.insert(members)


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
    """The planned steps of recipe ``name`` as a query (a join, not a list of keys)."""
    return (table.recipe_step_table() & {"recipe": name}).proj()
