"""Results of a transfer table as pandas DataFrames, for notebooks and plots.

:func:`results` gives one row per trained entry with its key, step, score,
what it received, its collapsed history and every config value flattened
into a column (``dataset.batch_size``, ``trainer.modules.distillation.alpha``).
:func:`lineage_frame` gives one row per step of one entry's chain.
"""

from __future__ import annotations

import pandas as pd

from ..hashing import from_jsonable

KEY_COLUMNS = ("transfer_step", "seed", "dataset_fn", "dataset_hash", "model_fn", "model_hash",
               "trainer_fn", "trainer_hash", "data_transfer", "collapsed_history")
KINDS = ("dataset", "model", "trainer")


def _flat(prefix: str, config: dict) -> dict:
    frame = pd.json_normalize(config, sep=".")
    return {f"{prefix}.{name}": value for name, value in frame.iloc[0].items()} if len(frame.columns) else {}


def _configs(table, kind: str) -> dict:
    fn, hash_, config = f"{kind}_fn", f"{kind}_hash", f"{kind}_config"
    # stored configs tag NaN and infinities ({"__float__": "nan"}); the columns hold the floats
    return {(row[fn], row[hash_]): from_jsonable(row[config]) for row in table.proj(config).to_dicts()}


def results(table=None, restriction=None) -> pd.DataFrame:
    """One row per done entry of ``table`` (default: TransferredTrainedModel), configs flattened.

    Three queries for the configs and one for the entries, whatever the
    number of rows.
    """
    from ..tables import TransferredTrainedModel

    table = table if table is not None else TransferredTrainedModel()
    query = table & restriction if restriction is not None else table
    configs = {kind: _configs(getattr(table, f"{kind}_table")(), kind) for kind in KINDS}
    rows = []
    for entry in query.proj("score", "received", "comment").to_dicts():
        row = {name: entry[name] for name in KEY_COLUMNS if name in entry}
        row.update(score=entry["score"], received=entry.get("received"), comment=entry["comment"])
        for kind in KINDS:
            row.update(_flat(kind, configs[kind][(entry[f"{kind}_fn"], entry[f"{kind}_hash"])]))
        rows.append(row)
    frame = pd.DataFrame(rows)
    if "transfer_step" in frame:
        frame = frame.sort_values(["transfer_step", "seed"], kind="stable").reset_index(drop=True)
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
