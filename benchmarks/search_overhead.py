"""Bookkeeping of a search per trial, against Optuna's own ``study.optimize``, on the embedded PostgreSQL.

A trainer that returns at once (with a tiny state_dict, built on a dataset
function that loads nothing and a one-weight model) isolates what a trial
costs around training.  Variants, run in one process on one server and
interleaved, with the same two-dimensional space (a log-uniform float and an
int) and Optuna's default TPE sampler:

* ``optuna``: ``study.optimize`` with an objective that suggests the two
  values and returns at once, its study in an ``RDBStorage`` in the same
  schema, reached the same way (SQLAlchemy over the server's socket);
* ``nntransfer``: ``nntransfer.search.optimize``: ask under the study lock,
  build and hash the configs, insert them, train through
  ``TransferredTrainedModel.populate`` with reserved jobs, read the score,
  tell, with a heartbeat per trial;
* ``nntransfer-duplicate``: a search whose space has a single value, so every
  trial after the first is a duplicate, answered from the stored row: its
  per-trial time and the number of trainings it ran.

Then ``--workers`` processes (``nntransfer worker`` on a search recipe whose
space has few values, so that trials propose the same configs) share one
study of ``--worker-trials`` trials: the script counts the trials per state,
the duplicates and the trainings each config got.

Run: ``python benchmarks/search_overhead.py [--trials 100] [--repeats 3] [--workers 4] [--worker-trials 40]``
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
        schema.drop()
    return {"wall_s": wall, "states": dict(frame["state"].value_counts()), "duplicates": int(frame["duplicate"].sum()),
            "configs": frame["trainer.depth"].nunique(), "most_trainings_of_a_config": max(trainings.values()),
            "trainings": sum(trainings.values())}


def run(trials: int, repeats: int) -> tuple[dict, int]:
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
    storage = open_storage(schema.connection, schema.database, heartbeat_interval=None, grace_period=None)

    def objective(trial):
        trial.suggest_float("trainer.lr", 1e-4, 1e-1, log=True)
        trial.suggest_int("trainer.depth", 1, 8)
        return 0.5

    timings = {"optuna": [], "nntransfer": [], "nntransfer-duplicate": []}
    duplicate_trainings = 0
    try:
        for repeat in range(repeats):
            study = optuna.create_study(storage=storage, study_name=f"optuna {repeat}", direction="maximize")
            start = time.perf_counter()
            study.optimize(objective, n_trials=trials)
            timings["optuna"].append(1000 * (time.perf_counter() - start) / trials)

            search = nts.Search(base, space, name=f"nntransfer {repeat}", trials=trials, direction="maximize")
            start = time.perf_counter()
            result = nts.optimize(search)
            timings["nntransfer"].append(1000 * (time.perf_counter() - start) / trials)
            if result["complete"] != trials or result["duplicates"]:
                raise RuntimeError(f"nntransfer: {result}")

            single = nts.Search(base, {"trainer.depth": nts.Categorical([repeat + 10])}, name=f"duplicates {repeat}",
                                trials=trials, direction="maximize")
            before = len(functions.TRAININGS)
            start = time.perf_counter()
            result = nts.optimize(single)
            timings["nntransfer-duplicate"].append(1000 * (time.perf_counter() - start) / trials)
            duplicate_trainings += len(functions.TRAININGS) - before
            if result["complete"] != trials or result["duplicates"] != trials - 1:
                raise RuntimeError(f"duplicates: {result}")
    finally:
        schema.drop()
    return timings, duplicate_trainings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--worker-trials", type=int, default=40)
    args = parser.parse_args()
    timings, trainings = run(args.trials, args.repeats)
    floor = statistics.median(timings["optuna"])
    print(f"search bookkeeping, {args.trials} trials x {args.repeats} repeats, TPE, embedded PostgreSQL")
    print("| variant | ms per trial (median) | min | max | vs optuna |")
    print("|---|---|---|---|---|")
    for name, values in timings.items():
        median = statistics.median(values)
        print(f"| {name} | {median:.1f} | {min(values):.1f} | {max(values):.1f} | {median / floor:.2f}x |")
    print(f"trainings run by the duplicate searches: {trainings} for {args.trials * args.repeats} trials "
          f"(one per search)")
    if args.workers:
        outcome = run_workers(args.workers, args.worker_trials)
        print(f"{args.workers} worker processes, one study of {args.worker_trials} trials over "
              f"{outcome['configs']} distinct configs, {outcome['wall_s']:.1f} s: trials {outcome['states']}, "
              f"{outcome['duplicates']} duplicates, {outcome['trainings']} trainings "
              f"(at most {outcome['most_trainings_of_a_config']} per config)")


if __name__ == "__main__":
    main()
