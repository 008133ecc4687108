"""Reliability: workers SIGKILLed every few seconds and one database restart, while a recipe of 3-step chains trains.

``--workers`` ``nntransfer worker`` processes (6) train ``--chains`` chains of
three transfer steps (20 chains: 60 steps) on a database server of the
script's own (see ``tests/integration/own_servers.py``): the embedded
PostgreSQL, a PostgreSQL on a TCP port, or a MariaDB on another port, never
a shared server.  Every ``--kill-every`` seconds one worker is killed with
SIGKILL and a new one started (a scheduler requeueing it); after
``--restart-after`` seconds the database server is stopped for ``--down``
seconds and started again, while the workers train.

At the end it checks and reports:

* every planned step has exactly one row, and every stored state_dict loads
  and matches its checksum (nothing lost);
* how many trainings ran their last epoch per step (a worker killed after its
  training finished but before its row was committed trains the step again,
  from its last checkpoint), and how many attempts only resumed from a
  finished training's final checkpoint to store it (a database outage while
  storing: the retry trains no epoch);
* no job reserved or failed, no checkpoint row left, and the files that
  killed workers left between writing and committing, as ``nntransfer gc``
  finds them (none after it);
* how long a killed worker's job stayed reserved by the dead process (kill
  to the job being free again, polled every half second: the orphan timeout
  plus the next refresh of a worker's queue), how long until another worker
  started training it (kill to the next start of the same step, which adds
  the wait for a free worker and its start-up), and how many restarts resumed
  from a checkpoint rather than from scratch.

Run::

    python benchmarks/reliability.py --backend embedded [--workers 6 --chains 20 --kill-every 4]

It prints the figures as text, or as one JSON line with ``--json``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "integration"))

RECIPE = '''
from nntransfer.configs import Experiment, TransferExperiment, config_class_for

Digits = config_class_for("nntransfer.datasets.digits.digits_dataset_fn", "dataset")
Mlp = config_class_for("nntransfer.models.mlp.mlp_model_fn", "model")
Steady = config_class_for("reliability.steady_trainer", "trainer")
seeds = list(range({chains}))
steps = [Experiment(Digits(batch_size=64), Mlp(hidden_sizes=[16]),
                    Steady(epochs={epochs}, epoch_seconds={epoch_seconds}, lr=lr, log_file={log!r}), seed=seeds)
         for lr in (0.01, 0.005, 0.002)]
experiments = {{"three steps": TransferExperiment(steps)}}
'''


# -- the trainer the recipe names (imported by the workers as module ``reliability``) -----------
def steady_trainer(model, dataloaders, seed, uid=None, cb=None, *, epochs: int = 4, epoch_seconds: float = 0.5,
                   log_file: str = "", **config):
    """The standard trainer, ``epoch_seconds`` per epoch, checkpointing every epoch; logs its start and end."""
    from nntransfer.hashing import config_hash
    from nntransfer.trainer.standard import standard_trainer

    store = getattr(cb, "checkpoint_store", None)
    last = store.load("last") if store is not None else None
    step = config_hash(dict(uid)) if uid else ""
    _log(log_file, {"event": "start", "pid": os.getpid(), "step": step,
                    "resumed_from": None if last is None else int(last["epoch"]), "at": time.time()})

    class Steady:
        checkpoint_store = store

        def __call__(self, **info):
            if cb is not None:
                cb(**info)
            time.sleep(epoch_seconds)

    result = standard_trainer(model, dataloaders, seed, uid=uid, cb=Steady(), epochs=epochs,
                              modules={"checkpointing": {"save_best": False}}, **config)
    # an attempt that resumed from the final checkpoint (its result could not be stored) trains no epoch
    trained = epochs - (0 if last is None else int(last["epoch"]))
    _log(log_file, {"event": "end", "pid": os.getpid(), "step": step, "trained_epochs": trained, "at": time.time()})
    return result


def _log(log_file: str, record: dict) -> None:
    if log_file:
        with open(log_file, "a") as log:
            log.write(json.dumps(record) + "\n")


# -- the run ---------------------------------------------------------------------------------------
def _worker(recipe: Path, env: dict, orphan_timeout: float, folder: Path, index: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "nntransfer.cli", "worker", str(recipe), "--poll", "0.2", "--threads", "1",
         "--orphan-timeout", str(orphan_timeout), "--reconnect-timeout", "300", "-q"],
        env=env, stdout=open(folder / f"worker-{index}.log", "w"), stderr=subprocess.STDOUT)


def run(backend: str, workers: int, chains: int, epochs: int, epoch_seconds: float, kill_every: float,
        restart_after: float, down: float, orphan_timeout: float, timeout: float, rng: random.Random) -> dict:
    from own_servers import OwnServer

    folder = Path(tempfile.mkdtemp(prefix="nnt-reliability-"))
    os.chmod(folder, 0o711)  # as root the embedded server runs as another user, which must enter it
    server = OwnServer(backend, folder).create()
    schema = f"nnt_reliability_{os.getpid()}_{secrets.token_hex(3)}"
    env = server.env(schema)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")]))
    events = folder / "events.jsonl"
    recipe = folder / "three_steps.py"
    recipe.write_text(RECIPE.format(chains=chains, epochs=epochs, epoch_seconds=epoch_seconds, log=str(events)))
    for name in ("NNTRANSFER_HOME", "NNTRANSFER_SCHEMA", "NNTRANSFER_DB", "DJ_HOST", "DJ_PORT", "DJ_USER", "DJ_PASS",
                 "DJ_BACKEND"):
        if name in env:
            os.environ[name] = env[name]
    sys.path.insert(0, str(HERE))
    from nntransfer import runner, tables
    from nntransfer.tables.reconnect import wait_for_database

    processes = []
    try:
        tables.activate(schema)
        loaded = runner.load_recipe(str(recipe))
        runner.insert(loaded)
        total = len(loaded.steps())
        table = tables.TransferredTrainedModel()
        jobs = table.jobs  # built once: building it reads the schema's dependencies
        started = time.monotonic()
        processes.extend(_worker(recipe, env, orphan_timeout, folder, index) for index in range(workers))
        kills, restarted, next_kill, count = [], None, started + kill_every, workers
        while True:
            now = time.monotonic()
            if now - started > timeout:
                raise RuntimeError(f"not done within {timeout:.0f} s; logs in {folder}")
            if restarted is None and now - started >= restart_after:
                server.stop()
                time.sleep(down)
                server.start()
                restarted = time.monotonic() - started
            if now >= next_kill:
                alive = [p for p in processes if p.poll() is None]
                if alive:
                    victim = rng.choice(alive)
                    try:  # whether it holds a job (it may still be starting)
                        held = bool(len(jobs & {"pid": victim.pid, "status": "reserved"}))
                    except Exception:  # the database is restarting
                        held = False
                    victim.send_signal(signal.SIGKILL)
                    victim.wait()
                    kills.append({"pid": victim.pid, "at": time.time(), "held": held, "freed": None})
                    processes.remove(victim)
                    processes.append(_worker(recipe, env, orphan_timeout, folder, count))
                    count += 1
                next_kill = now + kill_every
            try:
                wait_for_database(table.connection, timeout=120)
                done = runner.status(loaded, table)["total"]["done"]
                _note_freed(jobs, kills)
            except Exception:  # the database is restarting
                done = -1
            if done == total:
                break
            for process in list(processes):
                if process.poll() is not None:  # a worker that found nothing to do exits; keep the count up
                    processes.remove(process)
                    processes.append(_worker(recipe, env, orphan_timeout, folder, count))
                    count += 1
            time.sleep(0.5)
        wall = time.monotonic() - started
        for process in processes:
            try:
                process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                process.kill()
        return _check(loaded, total, events, kills, wall, restarted, backend, workers, folder)
    finally:
        for process in processes:  # an interrupted run leaves no worker behind
            if process.poll() is None:
                process.kill()
                process.wait()
        try:
            tables.schema.drop(prompt=False)
        except Exception:
            pass
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


def _note_freed(jobs, kills: list) -> None:
    """Note when the job a killed worker held is no longer reserved by it (given back or taken over)."""
    for kill in kills:
        if kill["held"] and kill["freed"] is None and not len(jobs & {"pid": kill["pid"], "status": "reserved"}):
            kill["freed"] = time.time()


def _check(recipe, total, events_file, kills, wall, restarted, backend, workers, folder) -> dict:
    from nntransfer import runner, tables
    from nntransfer.hashing import config_hash
    from nntransfer.tables.orphans import collect
    from nntransfer.tables.trained import artifact_store

    table = tables.TransferredTrainedModel()
    steps = runner.restriction(recipe, table)
    rows = (table & steps).to_dicts()
    keys = [{name: row[name] for name in table.primary_key} for row in rows]
    per_key = {}
    for key in keys:
        per_key[config_hash(key)] = per_key.get(config_hash(key), 0) + 1
    for key in keys:
        table.fetch_state_dict(key)  # reads the file and checks its SHA-256
    events = [json.loads(line) for line in events_file.read_text().splitlines()]
    ends, stores_retried = {}, 0
    for event in events:
        if event["event"] == "end" and event["trained_epochs"] > 0:
            ends[event["step"]] = ends.get(event["step"], 0) + 1
        elif event["event"] == "end":
            stores_retried += 1
    starts = [event for event in events if event["event"] == "start"]
    takeovers, freed = [], []
    for kill in kills:
        mine = [event for event in starts if event["pid"] == kill["pid"] and event["at"] <= kill["at"]]
        if not mine:
            continue
        step = mine[-1]["step"]
        if any(event["step"] == step and event["pid"] == kill["pid"] for event in events if event["event"] == "end"):
            continue  # that training had finished; the kill came between steps
        later = [event["at"] for event in starts if event["step"] == step and event["at"] > kill["at"]]
        if later:
            takeovers.append(min(later) - kill["at"])
        if kill["freed"] is not None:
            freed.append(kill["freed"] - kill["at"])
    restarts = [event for event in starts if any(e["step"] == event["step"] and e["at"] < event["at"] for e in starts)]
    orphans = collect([table], artifact_store(), grace=0, remove=False)
    collect([table], artifact_store(), grace=0, remove=True)
    after = collect([table], artifact_store(), grace=0, remove=False)
    return {
        "backend": backend, "workers": workers, "steps": total, "wall_s": round(wall, 1),
        "kills": len(kills), "kills_of_a_held_job": sum(bool(kill["held"]) for kill in kills), "database_restart_at_s": round(restarted, 1) if restarted is not None else None,
        "rows": len(rows), "steps_with_one_row": sum(count == 1 for count in per_key.values()),
        "all_load": True,
        "trainings_completed": sum(ends.values()), "steps_completed_twice": sum(n > 1 for n in ends.values()),
        "stores_retried_from_final_checkpoint": stores_retried,
        "reserved_jobs": len(table.jobs & "status = 'reserved'"), "error_jobs": len(table.jobs & "status = 'error'"),
        "checkpoint_rows": len(tables.Checkpoint() & {"target": table.full_table_name}),
        "orphaned_files_before_gc": len(orphans.files), "orphaned_files_after_gc": len(after.files),
        "restarted_trainings": len(restarts),
        "resumed_from_checkpoint": sum(event["resumed_from"] is not None for event in restarts),
        "freed_s_median": round(statistics.median(freed), 1) if freed else None,
        "freed_s_max": round(max(freed), 1) if freed else None,
        "takeover_s_median": round(statistics.median(takeovers), 1) if takeovers else None,
        "takeover_s_max": round(max(takeovers), 1) if takeovers else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("embedded", "postgresql", "mariadb"), default="embedded")
    parser.add_argument("--workers", type=int, default=6)
    parser.add_argument("--chains", type=int, default=20, help="chains of 3 steps (default 20: 60 steps)")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--epoch-seconds", type=float, default=0.5)
    parser.add_argument("--kill-every", type=float, default=4.0)
    parser.add_argument("--restart-after", type=float, default=20.0)
    parser.add_argument("--down", type=float, default=5.0)
    parser.add_argument("--orphan-timeout", type=float, default=6.0)
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    figures = run(args.backend, args.workers, args.chains, args.epochs, args.epoch_seconds, args.kill_every,
                  args.restart_after, args.down, args.orphan_timeout, args.timeout, random.Random(args.seed))
    if args.json:
        print(json.dumps(figures))
    else:
        for name, value in figures.items():
            print(f"{name:28} {value}")
    ok = (figures["rows"] == figures["steps"] == figures["steps_with_one_row"] and not figures["reserved_jobs"]
          and not figures["error_jobs"] and not figures["checkpoint_rows"] and not figures["orphaned_files_after_gc"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
