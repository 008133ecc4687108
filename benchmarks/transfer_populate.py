"""How long populate() takes to find its work among many done transfer entries.

Fills a fresh schema with N done entries over three steps (inserted directly,
no training) plus 20 planned-and-ready ones, registers a recipe per step, and
times the bookkeeping of ``TransferredTrainedModel.populate``: planning from
the recipes, flagging ready steps and listing the keys to compute
(``max_calls=0`` so nothing trains).  Run:

    python benchmarks/transfer_populate.py [N ...]     (default 500 1000 2000)
"""

from __future__ import annotations

import os
import secrets
import statistics
import sys
import tempfile
import time

os.environ.setdefault("NNTRANSFER_HOME", tempfile.mkdtemp(prefix="nnt-bench-"))
os.environ["NNTRANSFER_SCHEMA"] = f"nnt_bench_{secrets.token_hex(3)}"


def fill(tables, done: int) -> None:
    from nntransfer.steps import collapse_history
    from nntransfer.steps import plan_row

    T = tables.TransferredTrainedModel
    digits = tables.Dataset().add_entry(dataset_fn="nntransfer.datasets.digits.digits_dataset_fn", dataset_config={})
    model = tables.Model().add_entry(model_fn="nntransfer.models.mlp.mlp_model_fn", model_config={})
    trainers = [tables.Trainer().add_entry(trainer_fn="nntransfer.trainer.standard.standard_trainer",
                                           trainer_config={"epochs": step + 1}) for step in range(3)]
    per_step = done // 3
    seeds = range(per_step + 20)
    tables.Seed().insert([{"seed": s} for s in seeds], skip_duplicates=True)
    user = tables.Fabrikant.get_current_user()
    plans, rows = [], []
    for seed in seeds:
        previous = None
        for step in range(3):
            key = {**digits, **model, **trainers[step], "seed": seed, "transfer_step": step, "data_transfer": 0,
                   "collapsed_history": collapse_history(previous["collapsed_history"], previous) if previous else ""}
            plans.append(plan_row(key, previous, "benchmark"))
            if seed < per_step:
                rows.append({**key, "output": {}, "score": 0.5, "fabrikant_name": user,
                             "successor_history": collapse_history(key["collapsed_history"], key)})
            previous = key
    T.plan_table().insert(plans)
    T().insert(rows, allow_direct_insert=True)
    for step in (1, 2):
        tables.TrainerTransferRecipe().add_entry(transfer_from=trainers[step - 1], transfer_to=trainers[step],
                                                 transfer_step=step)
    T.transfer_recipe = [tables.TrainerTransferRecipe()]


def main(sizes) -> None:
    import logging

    from nntransfer import tables
    from nntransfer.db import embedded
    from nntransfer.settings import load_settings

    schema = tables.activate()
    logging.getLogger("datajoint").setLevel(logging.WARNING)
    try:
        print(f"{'done':>6} {'to do':>6} {'populate bookkeeping (median of 5)':>36}")
        for size in sizes:
            tables.Fabrikant().delete()
            tables.Seed().delete()
            tables.TrainerTransferRecipe().delete_quick()
            fill(tables, size)
            T = tables.TransferredTrainedModel
            todo = len(T.key_source - T.proj())
            times = []
            for _ in range(5):
                start = time.perf_counter()
                T.populate(max_calls=0)
                times.append(time.perf_counter() - start)
            print(f"{len(T()):>6} {todo:>6} {statistics.median(times) * 1000:>33.1f} ms")
    finally:
        schema.drop()
        if load_settings().mode == "embedded":
            embedded.stop(load_settings().pgdata)


if __name__ == "__main__":
    main([int(arg) for arg in sys.argv[1:]] or [500, 1000, 2000])
