"""Results of a transfer table as pandas DataFrames, for notebooks and plots.

:func:`results` gives one row per trained entry: chain, step, seed, score,
comment and what it received first, then its final metrics and the config
values that differ between the rows, flattened into columns
(``dataset.batch_size``, ``trainer.modules.distillation.alpha``), and the keys
and hashes last, where they do not push the score off the screen.
:func:`lineage_frame` gives one row per step of one entry's chain.
"""

from __future__ import annotations

import pandas as pd

from ..hashing import from_jsonable
from ..serialization import output_from_json
from ..steps import STEP_KEY_FIELDS

KEY_COLUMNS = ("transfer_step", "dataset_fn", "dataset_hash", "model_fn", "model_hash",
               "trainer_fn", "trainer_hash", "data_transfer", "collapsed_history")
KINDS = ("dataset", "model", "trainer")


def _flat(prefix: str, config: dict) -> dict:
    frame = pd.json_normalize(config, sep=".")
    return {f"{prefix}.{name}": value for name, value in frame.iloc[0].items()} if len(frame.columns) else {}


def _configs(table, kind: str, query) -> dict:
    """The flattened configs the entries of ``query`` use, each fetched and flattened once."""
    fn, hash_, config = f"{kind}_fn", f"{kind}_hash", f"{kind}_config"
    # stored configs tag NaN and infinities ({"__float__": "nan"}); the columns hold the floats
    return {(row[fn], row[hash_]): _flat(kind, from_jsonable(row[config]))
            for row in (table & query.proj()).proj(config).to_dicts()}


def results(table=None, restriction=None, *, recipe=None, all_fields: bool = False) -> pd.DataFrame:
    """One row per done entry of ``table`` (default: TransferredTrainedModel), for reading.

    ``table`` may be any restriction of a trained-model table
    (``TrainedModel & keys``, ``TransferredTrainedModel & {"seed": 1}``);
    ``restriction`` restricts it further.  The columns come in the order one
    reads them: ``chain`` (the recipe's chain names when ``recipe`` is given,
    else the chain that planned the step), ``step``, ``seed``, ``score``,
    ``comment``, ``received``, the final metrics (``test.accuracy``, ...),
    then the config values that differ between the rows
    (``trainer.modules.distillation.alpha``), and the keys and hashes last.
    Config values that are the same in every row are left out unless
    ``all_fields``; the frame's ``attrs["constant"]`` holds them.

    Three queries for the configs and one for the entries (joined with the
    plan for who planned them), whatever the number of rows.
    """
    from ..tables import TransferredTrainedModel

    table = table if table is not None else TransferredTrainedModel()
    if isinstance(table, type):
        table = table()
    query = table & restriction if restriction is not None else table
    configs = {kind: _configs(getattr(table, f"{kind}_table")(), kind, query) for kind in KINDS}
    transfer = "transfer_step" in query.primary_key
    entries = query.proj("score", "comment", "output", *(("received",) if transfer else ()))
    if transfer and recipe is None:  # who planned each step, in the same query
        entries = entries * query.plan_table().proj("planned_by")
    chains = _chain_names(recipe) if transfer and recipe is not None else {}
    rows = []
    for entry in entries.to_dicts():
        row = {}
        if transfer:
            if recipe is not None:
                row["chain"] = chains.get(_entry_id(entry), "")
            else:  # the chain that planned the step ("recipe: chain")
                row["chain"] = entry["planned_by"].rsplit(": ", 1)[-1]
            row["step"] = int(entry["transfer_step"])
        row.update(seed=int(entry["seed"]), score=entry["score"], comment=entry["comment"])
        if transfer:
            row["received"] = RECEIVED_LABELS.get(entry["received"], entry["received"])
        final = (output_from_json(entry["output"]) or {}).get("final") or {}
        row.update({name: value for name, value in final.items() if isinstance(value, (int, float))})
        for kind in KINDS:
            row.update(configs[kind][(entry[f"{kind}_fn"], entry[f"{kind}_hash"])])
        row.update({name: entry[name] for name in KEY_COLUMNS if name in entry and name != "transfer_step"})
        rows.append(row)
    return _readable(pd.DataFrame(rows), all_fields)


RECEIVED_LABELS = {"": "nothing", "model_state": "model state", "transfer_data": "data"}
"""What a step received, in the words the report and the demo use for what a step hands on."""

LEAD_COLUMNS = ("chain", "step", "seed", "score", "comment", "received")
CONFIG_PREFIXES = tuple(f"{kind}." for kind in KINDS)


def _entry_id(entry: dict) -> tuple:
    return tuple(str(entry[name]) if name.endswith(("_fn", "_hash", "history")) else int(entry[name])
                 for name in STEP_KEY_FIELDS)


def _chain_names(recipe) -> dict:
    """``{step id: chain name(s)}``: the names of the chains of ``recipe`` each step belongs to."""
    names: dict = {}
    for name, chain in recipe.chains.items():
        for key in chain.all_steps():
            names.setdefault(_entry_id(key), []).append(name)
    return {step: ", ".join(dict.fromkeys(members)) for step, members in names.items()}


def _same_everywhere(column: pd.Series) -> bool:
    return column.map(repr).nunique(dropna=False) <= 1


def _readable(frame: pd.DataFrame, all_fields: bool) -> pd.DataFrame:
    """Lead columns first, then results, then the config values (differing ones only), keys last."""
    if frame.empty:
        frame.attrs["constant"] = {}
        return frame
    config = [c for c in frame.columns if c.startswith(CONFIG_PREFIXES)]
    constant = {c: frame[c].iloc[0] for c in config if len(frame) > 1 and _same_everywhere(frame[c])}
    shown_config = config if all_fields else [c for c in config if c not in constant]
    keys = [c for c in KEY_COLUMNS if c in frame.columns]
    lead = [c for c in LEAD_COLUMNS if c in frame.columns]
    metrics = [c for c in frame.columns if c not in lead and c not in config and c not in keys]
    sort = [c for c in ("chain", "step", "seed") if c in frame.columns]
    frame = frame[lead + metrics + shown_config + keys].sort_values(sort, kind="stable").reset_index(drop=True)
    frame.attrs["constant"] = constant
    return frame


def lineage_frame(table, key: dict) -> pd.DataFrame:
    """One row per step of ``key``'s chain, step 0 first: configs, score, what it received, load summary."""
    rows = []
    for item in table.lineage(key):
        row = dict(item["key"])
        row.update(done=item["done"], score=item["score"], received=item["received"], hands_on=item["hands_on"])
        report = item["load_report"] or {}
        for part in ("loaded", "missing", "unexpected", "shape_mismatched", "excluded"):
            row[f"load.{part}"] = len(report.get(part, ())) if report else None
        for kind in KINDS:
            row.update(_flat(kind, item[f"{kind}_config"]))
        rows.append(row)
    return pd.DataFrame(rows)
