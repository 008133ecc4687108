"""Bookkeeping of a recipe that stays flat with the number of steps in the schema.

Each figure is measured side by side with the bare DataJoint query of the same
thing, in one process on one server (the embedded PostgreSQL by default):

* per job: a worker (``runner.work``) trains the recipe's 50 pending steps
  with a trainer that returns at once, among N done steps of the same recipe;
  the time between two stored steps (the worker's "k of n steps done" lines),
  against DataJoint's own ``populate(reserve_jobs=True, max_calls=1)`` of a
  bare computed table with N done and 50 pending keys and a make that inserts
  one row (DataJoint refreshes its job queue at every call);
* start+stop: the rest of that worker's run (flagging ready steps, refreshing
  the queue and counting the steps, at start and before it stops), paid once;
* status: ``runner.status`` (steps per transfer step and state: one grouped
  query over the recipe's membership, the trained rows and the job table)
  against the bare count of the recipe's steps per transfer step (its
  membership joined with the plan);
* insert (at 10k steps): the first insert of a real recipe object (configs,
  seeds, plan rows, membership) and a no-op re-insert, against a bare bulk
  insert of the same plan rows;
* ``results()`` of the 10k rows against a bare fetch of the rows and their configs;
* the ``nntransfer status`` command end to end (a new process) against a new
  process that imports DataJoint, connects and runs the grouped count (median
  of 5, after a first run of each that writes Python's bytecode cache).

The N done steps are written in bulk (plan, trained rows and membership as an
insert writes them, no training), so 100,000 steps take about a minute.

Run: ``python benchmarks/recipe_bookkeeping.py [--sizes 1000 10000 100000] [--server mysql://root@host:3306]``
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("NNTRANSFER_HOME", tempfile.mkdtemp(prefix="nnt-bench-"))
os.environ.setdefault("NNTRANSFER_ALLOWED_PACKAGES", "recipe_bookkeeping")

PENDING = 50
RECIPE = "bench"


def dataset_fn(seed, size: int = 1):
    return {"train": None, "validation": None, "test": None}


def model_fn(dataloaders, seed):
    import torch

    return torch.nn.Linear(1, 1)


def instant_trainer(model, dataloaders, seed, uid=None, cb=None, step: int = 0):
    return 0.5, {}, model.state_dict()


def fill(tables, done: int) -> None:
    """N done steps (3 per seed) and PENDING ready ones, all members of recipe ``bench``; no training."""
    from nntransfer.steps import plan_row, successor_history
    from nntransfer.tables import membership

    T = tables.TransferredTrainedModel
    data = tables.Dataset().add_entry(dataset_fn="recipe_bookkeeping.dataset_fn", dataset_config={})
    model = tables.Model().add_entry(model_fn="recipe_bookkeeping.model_fn", model_config={})
    trainers = [tables.Trainer().add_entry(trainer_fn="recipe_bookkeeping.instant_trainer",
                                           trainer_config={"step": step}) for step in range(3)]
    seeds = range(done // 3 + PENDING)
    tables.Seed().insert([{"seed": s} for s in seeds], skip_duplicates=True)
    user = tables.Fabrikant.get_current_user()
    plans, rows, keys = [], [], []
    for seed in seeds:
        previous = None
        for step in range(3 if seed < done // 3 else 1):
            key = {**data, **model, **trainers[step], "seed": seed, "transfer_step": step, "data_transfer": 0,
                   "collapsed_history": successor_history(previous) if previous else ""}
            plans.append({**plan_row(key, previous, "benchmark"), "ready": 1})  # its previous step is done
            keys.append(key)
            if seed < done // 3:
                rows.append({**key, "output": {}, "score": 0.5, "fabrikant_name": user,
                             "successor_history": successor_history(key)})
            previous = key
    for start in range(0, len(plans), 20_000):
        T.plan_table().insert(plans[start:start + 20_000])
    # the rows below check their foreign key against the plan: with its size known the server looks
    # each up in the index (otherwise PostgreSQL may scan the whole plan for every row)
    membership.refresh_statistics(T())
    for start in range(0, len(rows), 20_000):
        T().insert(rows[start:start + 20_000], allow_direct_insert=True)
    recipe_row, members = membership.membership_rows(T(), RECIPE, keys, [])  # filled steps: no chains
    T.recipe_table().insert1(recipe_row)
    for start in range(0, len(members), 20_000):
        T.recipe_step_table().insert(members[start:start + 20_000])
    membership.refresh_statistics(T())  # what insert_recipe does after a bulk insert


def settle(connection, names) -> None:
    """Let the server finish with the bulk writes before anything is timed, as in a database that has had
    its rows for a while: on PostgreSQL vacuum the tables (autovacuum would start on its own in the middle of
    the measurement) and write the checkpoint; drop this process's leftovers of the fill."""
    if connection.adapter.backend == "postgresql":
        for name in names:
            connection.query(f"VACUUM ANALYZE {name}")
        connection.query("CHECKPOINT")
    gc.collect()


def bare_tables(schema_name, connection, done: int):
    """A bare computed table with ``done`` rows and PENDING keys to do; returns it."""
    from nntransfer.db import import_datajoint

    dj = import_datajoint()
    raw = dj.Schema(schema_name, connection=connection)

    @raw
    class Source(dj.Manual):
        definition = """
        source_id: int32
        """

    @raw
    class Bare(dj.Computed):
        definition = """
        -> Source
        ---
        score: float64
        """

        def make(self, key):
            self.insert1({**key, "score": 0.5})

    Source().insert([{"source_id": i} for i in range(done + PENDING)])
    for start in range(0, done, 20_000):
        Bare().insert([{"source_id": i, "score": 0.5} for i in range(start, min(done, start + 20_000))],
                      allow_direct_insert=True)
    return raw, Bare


class _StoreTimes(logging.Handler):
    """When the worker logs each ``k of n steps done`` line: the time between two is the bookkeeping of one job."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.times = []

    def emit(self, record):
        if "steps done" in str(record.msg):
            self.times.append(time.perf_counter())


def per_job(tables, runner, Bare) -> tuple[float, float, float]:
    """Per job in steady state (between two stored steps), a worker's start and stop, and DataJoint's per call."""
    T = tables.TransferredTrainedModel
    stored = _StoreTimes()
    worker_log = logging.getLogger("nntransfer.worker")
    worker_log.addHandler(stored)
    worker_log.setLevel(logging.INFO)
    try:
        start = time.perf_counter()
        result = runner.work(runner.Recipe(name=RECIPE, chains={}), max_idle=0)
        working = time.perf_counter() - start
    finally:
        worker_log.removeHandler(stored)
    assert result["trained"] == PENDING == len(stored.times), (result, len(stored.times))
    ours = (stored.times[-1] - stored.times[0]) / (PENDING - 1)
    once = working - PENDING * ours  # marking ready steps, queue refreshes and counts at start and end
    start = time.perf_counter()
    trained = 0
    while Bare.populate(reserve_jobs=True, max_calls=1)["success_count"]:
        trained += 1
    bare = (time.perf_counter() - start) / max(1, trained)
    assert trained == PENDING and len(T.jobs.errors) == 0
    return ours, once, bare


def status(tables, runner) -> tuple[float, float]:
    T = tables.TransferredTrainedModel
    plan, member = T.plan_table(), T.recipe_step_table()
    on = " AND ".join(f"m.{name} = p.{name}" for name in plan.primary_key)
    query = (f"SELECT p.transfer_step, COUNT(*) FROM {plan.full_table_name} p JOIN {member.full_table_name} m "
             f"ON {on} WHERE m.recipe = '{RECIPE}' GROUP BY p.transfer_step")
    ours, bare = [], []
    for _ in range(5):
        start = time.perf_counter()
        runner.status(RECIPE)
        ours.append(time.perf_counter() - start)
        start = time.perf_counter()
        T.connection.query(query).fetchall()
        bare.append(time.perf_counter() - start)
    return statistics.median(ours), statistics.median(bare)


def results_frame(tables) -> tuple[float, float]:
    """``results()`` of the recipe's rows against a bare fetch of the same rows and of their configs."""
    from nntransfer.analysis.results import results
    from nntransfer.tables.membership import restriction

    T = tables.TransferredTrainedModel()
    rows = T & restriction(T, RECIPE)
    ours, bare = [], []
    for _ in range(3):
        start = time.perf_counter()
        frame = results(rows)
        ours.append(time.perf_counter() - start)
        start = time.perf_counter()
        fetched = rows.to_dicts()
        for kind in ("dataset", "model", "trainer"):
            (getattr(T, f"{kind}_table")() & rows.proj()).to_dicts()
        bare.append(time.perf_counter() - start)
        assert len(frame) == len(fetched)
    return statistics.median(ours), statistics.median(bare)


def command(schema_name: str, counted_table: str) -> tuple[float, float]:
    """``nntransfer status`` as a new process, against a new process doing the bare count."""
    bare_code = (
        "from nntransfer.db import connect; c = connect(); "
        f"c.query('SELECT transfer_step, COUNT(*) FROM {counted_table} "
        f"WHERE recipe = %s GROUP BY transfer_step', args=('{RECIPE}',)).fetchall()"
    )
    # as Python runs by default, compiled modules are cached (an environment that turns the cache off
    # compiles nntransfer's modules, installed from source, in every process); the first run writes it
    env = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}
    env["NNTRANSFER_SCHEMA"] = schema_name
    ours, bare = [], []
    for _ in range(6):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "nntransfer.cli", "status", RECIPE], env=env, check=True,
                       capture_output=True)
        ours.append(time.perf_counter() - start)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", bare_code], env=env, check=True, capture_output=True)
        bare.append(time.perf_counter() - start)
    return statistics.median(ours[1:]), statistics.median(bare[1:])


def insert_10k(tables, runner) -> tuple[float, float, float]:
    """First insert and no-op re-insert of a 10,000-step recipe object, and a bare bulk insert of its plan rows."""
    from nntransfer.configs import DatasetConfig, Experiment, ModelConfig, TrainerConfig, TransferExperiment

    data = DatasetConfig.for_fn("recipe_bookkeeping.dataset_fn", size=2)
    model = ModelConfig.for_fn("recipe_bookkeeping.model_fn")
    seeds = list(range(100_000, 100_100))
    chains = {
        f"chain {i}": TransferExperiment([
            Experiment(data, model, TrainerConfig.for_fn("recipe_bookkeeping.instant_trainer", step=100 + i), seed=seeds),
            Experiment(data, model, TrainerConfig.for_fn("recipe_bookkeeping.instant_trainer", step=200 + i), seed=seeds),
        ])
        for i in range(50)
    }
    recipe = runner.Recipe(name="bench10k", chains=chains)
    start = time.perf_counter()
    assert runner.insert(recipe) == 10_000
    first = time.perf_counter() - start
    start = time.perf_counter()
    assert runner.insert(recipe) == 0
    again = time.perf_counter() - start
    T = tables.TransferredTrainedModel
    rows = [row for chain in chains.values() for seed in seeds for row in T().plan_rows(chain.steps(seed), "bare")]
    (T.recipe_step_table() & {"recipe": "bench10k"}).delete_quick()
    plan = T.plan_table()
    (plan & "planned_by LIKE 'bench10k%%'").delete_quick()
    start = time.perf_counter()
    for begin in range(0, len(rows), 20_000):
        plan.insert(rows[begin:begin + 20_000])
    bare = time.perf_counter() - start
    return first, again, bare


def use_server(url: str) -> None:
    """Measure on the server at ``url`` (``postgresql://user@host:port`` or ``mysql://user@host:port``)."""
    parsed = urlparse(url)
    os.environ.update(NNTRANSFER_DB="server", DJ_HOST=parsed.hostname or "127.0.0.1", DJ_USER=parsed.username or "root",
                      DJ_PASS=parsed.password or "", DJ_BACKEND="postgresql" if parsed.scheme.startswith("postgres")
                      else "mysql")
    if parsed.port:
        os.environ["DJ_PORT"] = str(parsed.port)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--server", help="a database server instead of the embedded PostgreSQL, as "
                        "postgresql://user@host:port or mysql://user@host:port")
    args = parser.parse_args()
    if args.server:
        use_server(args.server)
    import torch  # noqa: F401  (a worker has torch loaded; keep its import out of the timings)

    from nntransfer import runner, tables
    from nntransfer.db import embedded
    from nntransfer.settings import load_settings

    logging.getLogger("datajoint").setLevel(logging.WARNING)
    print(f"{'steps':>7} {'fill s':>6} | {'per job ms':>10} {'bare':>6} {'ratio':>6} {'start+stop ms':>13} | "
          f"{'status ms':>9} {'bare':>6} {'ratio':>6} | {'command s':>9} {'bare':>5}")
    try:
        for size in args.sizes:
            name = f"nnt_bench_{secrets.token_hex(3)}"
            schema = tables.activate(name)
            raw = None
            try:
                start = time.perf_counter()
                fill(tables, size)
                filled = time.perf_counter() - start
                raw, Bare = bare_tables(name + "_raw", schema.connection, size)
                T = tables.TransferredTrainedModel
                settle(schema.connection, [T.plan_table().full_table_name, T.recipe_step_table().full_table_name,
                                           T.full_table_name, Bare.full_table_name])
                job, once, bare_job = per_job(tables, runner, Bare)
                query, bare_query = status(tables, runner)
                counted = tables.TransferredTrainedModel.recipe_step_table().full_table_name
                cmd, bare_cmd = command(name, counted) if size == 10_000 else (float("nan"), float("nan"))
                print(f"{size:>7} {filled:>6.1f} | {job * 1e3:>10.1f} {bare_job * 1e3:>6.1f} {job / bare_job:>6.2f} "
                      f"{once * 1e3:>13.0f} | {query * 1e3:>9.1f} {bare_query * 1e3:>6.1f} {query / bare_query:>6.2f} | "
                      f"{cmd:>9.2f} {bare_cmd:>5.2f}", flush=True)
                if size == 10_000:
                    frame, bare_frame = results_frame(tables)
                    print(f"results() of {size} rows: {frame:.2f} s, bare fetch of rows and configs "
                          f"{bare_frame:.2f} s, ratio {frame / bare_frame:.2f}", flush=True)
                    first, again, bare = insert_10k(tables, runner)
                    print(f"10k-step recipe: first insert {first:.1f} s (bare plan rows {bare:.1f} s), "
                          f"no-op re-insert {again:.2f} s", flush=True)
            finally:
                if raw is not None:
                    raw.drop(prompt=False)
                schema.drop(prompt=False)
    finally:
        if load_settings().mode == "embedded":
            embedded.stop(load_settings().pgdata)


if __name__ == "__main__":
    main()
