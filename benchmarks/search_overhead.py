"""Bookkeeping of a search per trial, against Optuna's own ``study.optimize``, on the embedded PostgreSQL.

A trainer that returns at once (with a tiny state_dict, built on a dataset
function that loads nothing and a one-weight model) isolates what a trial
costs around training.  Variants, run in one process on one server, with the
same two-dimensional space (a log-uniform float and an int) and Optuna's
default TPE sampler:

* ``optuna``: ``study.optimize`` with an objective that suggests the two
  values and returns at once, its study in the search's own storage: an
  ``RDBStorage`` in the same schema, reached the same way (SQLAlchemy over
  the server's socket), with the heartbeats a search keeps so that a dead
  worker's trial is retried (Optuna's ``study.optimize`` then records a
  heartbeat per trial and fails stale trials before each one);
* ``optuna-no-heartbeat``: the same without heartbeats (a storage that
  cannot retry a dead worker's trial);
* ``nntransfer``: ``nntransfer.search.optimize``: ask under the study lock,
  build and hash the configs, insert them, train through
  ``TransferredTrainedModel.populate`` with reserved jobs, read the score,
  tell, with a heartbeat per trial;
* ``nntransfer-duplicate``: a search whose space has a single value, so every
  trial after the first is a duplicate, answered from the stored row: its
  per-trial time and the number of trainings it ran.

Each repeat runs every variant on a study of its own, ``--chunk`` trials at a
time in turn (the order rotating), so that a change in the machine's load
falls on all of them alike; a search's chunk is a call of ``optimize`` that
uses up a budget raised by ``--chunk``, so it counts its budget under the
lock as a worker does.  The ratios are taken per repeat, then their median.

Then ``--workers`` processes (``nntransfer worker`` on a search recipe whose
space has few values, so that trials propose the same configs) share one
study of ``--worker-trials`` trials: the script counts the trials per state,
the duplicates and the trainings each config got.

Run: ``python benchmarks/search_overhead.py [--trials 100] [--repeats 3] [--chunk 20] [--workers 4] [--worker-trials 40]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
OWN_HOME = "NNTRANSFER_HOME" not in os.environ
"""The benchmark made its own home (and embedded server), which it stops at the end."""
os.environ.setdefault("NNTRANSFER_HOME", tempfile.mkdtemp(prefix="nnt-bench-"))
os.environ["NNTRANSFER_DB"] = "embedded"
os.environ["NNTRANSFER_ALLOWED_PACKAGES"] = " ".join(filter(None, [os.environ.get("NNTRANSFER_ALLOWED_PACKAGES"),
                                                                  "search_overhead"]))

TRAININGS = []


def dataset_fn(seed):
    return {"train": None, "validation": None, "test": None}


def model_fn(dataloaders, seed):
    import torch

    return torch.nn.Linear(1, 1)


def instant_trainer(model, dataloaders, seed, uid=None, cb=None, *, lr: float = 0.1, depth: int = 1,
                    log_file: str = ""):
    TRAININGS.append(1)
    if log_file:
        with open(log_file, "a") as log:
            log.write(f"{depth}\n")
    return 0.5 + depth / 100, {}, model.state_dict()


WORKER_RECIPE = """
from nntransfer.configs import DatasetConfig, Experiment, ModelConfig, TrainerConfig
from nntransfer.search import Categorical, Search

trainer = TrainerConfig.for_fn("search_overhead.instant_trainer", log_file={log!r})
search = Search(Experiment(DatasetConfig.for_fn("search_overhead.dataset_fn"),
                           ModelConfig.for_fn("search_overhead.model_fn"), trainer, seed=1),
                {{"trainer.depth": Categorical(list(range(1, 9)))}}, name="workers", trials={trials},
                direction="maximize", sampler="random")
"""


def run_workers(workers: int, trials: int) -> dict:
    """``workers`` processes on one study of ``trials`` trials; counts of the outcome."""
    import collections
    import subprocess

    from nntransfer import search as nts
    from nntransfer import tables
    from nntransfer.runner import import_recipe

    folder = Path(tempfile.mkdtemp(prefix="nnt-bench-workers-"))
    log_file = folder / "trained.txt"
    recipe = folder / "worker_search.py"
    recipe.write_text(WORKER_RECIPE.format(log=str(log_file), trials=trials))
    schema_name = f"nnt_bench_workers_{os.getpid()}"
    schema = tables.activate(schema_name)
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).parent), os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, "-m", "nntransfer.cli", "worker", str(recipe), "--schema", schema_name, "--poll", "0.2"]
    try:
        start = time.perf_counter()
        processes = [subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                     for _ in range(workers)]
        failed = [p.communicate()[1][-2000:] for p in processes if p.wait() != 0]
        wall = time.perf_counter() - start
        if failed:
            raise RuntimeError(f"worker failed: {failed[0]}")
        frame = nts.results(import_recipe(str(recipe)).search)
        trainings = collections.Counter(log_file.read_text().split())
    finally:
        schema.drop(prompt=False)
    return {"wall_s": wall, "states": {state: int(n) for state, n in frame["state"].value_counts().items()},
            "duplicates": int(frame["duplicate"].sum()),
            "configs": frame["trainer.depth"].nunique(), "most_trainings_of_a_config": max(trainings.values()),
            "trainings": sum(trainings.values())}


HEARTBEAT_INTERVAL, GRACE_PERIOD = 75, 300
"""The heartbeat settings of a search's storage (``optimize``'s default orphan timeout of 300 s)."""


def run(trials: int, repeats: int, chunk: int) -> tuple[dict, dict, int]:
    """Per repeat: ms per trial of each variant; the ratios to Optuna per repeat; trainings of the duplicate searches."""
    import optuna
    import torch  # noqa: F401  (a worker has torch loaded; keep its import out of the timings)

    from nntransfer import search as nts
    from nntransfer import tables
    from nntransfer.configs import DatasetConfig, Experiment, ModelConfig, TrainerConfig
    from nntransfer.search.storage import open_storage
    import search_overhead as functions  # the module the stored function names import (not __main__)

    schema = tables.activate(f"nnt_bench_search_{os.getpid()}")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    base = Experiment(DatasetConfig.for_fn("search_overhead.dataset_fn"), ModelConfig.for_fn("search_overhead.model_fn"),
                      TrainerConfig.for_fn("search_overhead.instant_trainer"), seed=1)
    space = {"trainer.lr": nts.LogUniform(1e-4, 1e-1), "trainer.depth": nts.Integer(1, 8)}
    storages = {"optuna": open_storage(schema.connection, schema.database, HEARTBEAT_INTERVAL, GRACE_PERIOD),
                "optuna-no-heartbeat": open_storage(schema.connection, schema.database, None, None)}

    def objective(trial):
        trial.suggest_float("trainer.lr", 1e-4, 1e-1, log=True)
        trial.suggest_int("trainer.depth", 1, 8)
        return 0.5

    timings = {name: [] for name in (*storages, "nntransfer", "nntransfer-duplicate")}
    duplicate_trainings = 0
    try:
        for repeat in range(repeats):
            studies = {name: optuna.create_study(storage=storage, study_name=f"{name} {repeat}", direction="maximize")
                       for name, storage in storages.items()}

            def searches(done: int) -> dict:
                budget = dict(trials=done + chunk, direction="maximize")
                return {"nntransfer": nts.Search(base, space, name=f"nntransfer {repeat}", **budget),
                        "nntransfer-duplicate": nts.Search(base, {"trainer.depth": nts.Categorical([repeat + 10])},
                                                           name=f"duplicates {repeat}", **budget)}

            spent = dict.fromkeys(timings, 0.0)
            counts = {name: {"complete": 0, "duplicates": 0} for name in ("nntransfer", "nntransfer-duplicate")}
            before = len(functions.TRAININGS)
            for index, done in enumerate(range(0, trials, chunk)):
                names = list(timings)
                for name in names[index % len(names):] + names[:index % len(names)]:
                    start = time.perf_counter()
                    if name in studies:
                        studies[name].optimize(objective, n_trials=chunk)
                    else:
                        result = nts.optimize(searches(done)[name])
                        counts[name]["complete"] += result["complete"]
                        counts[name]["duplicates"] += result["duplicates"]
                    spent[name] += time.perf_counter() - start
            for name, seconds in spent.items():
                timings[name].append(1000 * seconds / (len(range(0, trials, chunk)) * chunk))
            total = len(range(0, trials, chunk)) * chunk
            if counts["nntransfer"] != {"complete": total, "duplicates": 0}:
                raise RuntimeError(f"nntransfer: {counts['nntransfer']}")
            if counts["nntransfer-duplicate"] != {"complete": total, "duplicates": total - 1}:
                raise RuntimeError(f"duplicates: {counts['nntransfer-duplicate']}")
            # every trial of the nntransfer search trained once, each duplicate search once
            duplicate_trainings += len(functions.TRAININGS) - before - total
    finally:
        schema.drop(prompt=False)
    ratios = {baseline: {name: [mine / theirs for mine, theirs in zip(timings[name], timings[baseline])]
                         for name in ("nntransfer", "nntransfer-duplicate")} for baseline in storages}
    return timings, ratios, duplicate_trainings


def main() -> None:
    from nntransfer.db import embedded
    from nntransfer.settings import load_settings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--chunk", type=int, default=20, help="trials each variant runs in turn")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--worker-trials", type=int, default=40)
    args = parser.parse_args()
    try:
        timings, ratios, trainings = run(args.trials, args.repeats, args.chunk)
        trials = len(range(0, args.trials, args.chunk)) * args.chunk
        print(f"search bookkeeping, {trials} trials x {args.repeats} repeats in chunks of {args.chunk}, TPE, "
              "embedded PostgreSQL")
        print("| variant | ms per trial (median) | min | max | vs optuna (median of repeats) "
              "| vs optuna-no-heartbeat |")
        print("|---|---|---|---|---|---|")
        for name, values in timings.items():
            versus = [f"{statistics.median(ratios[base][name]):.2f}x" if name in ratios[base] else
                      ("1.00x" if name == base else "") for base in ratios]
            print(f"| {name} | {statistics.median(values):.1f} | {min(values):.1f} | {max(values):.1f} | "
                  f"{' | '.join(versus)} |")
        print(f"trainings run by the duplicate searches: {trainings} for {trials * args.repeats} trials "
              f"(one per search)")
        if args.workers:
            outcome = run_workers(args.workers, args.worker_trials)
            print(f"{args.workers} worker processes, one study of {args.worker_trials} trials over "
                  f"{outcome['configs']} distinct configs, {outcome['wall_s']:.1f} s: trials {outcome['states']}, "
                  f"{outcome['duplicates']} duplicates, {outcome['trainings']} trainings "
                  f"(at most {outcome['most_trainings_of_a_config']} per config)")
    finally:
        if OWN_HOME:
            embedded.stop(load_settings().pgdata)


if __name__ == "__main__":
    main()
