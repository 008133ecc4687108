"""Kill storm: worker processes killed with SIGKILL while they train, the orphan timeout shorter than an epoch.

A recipe of two-step chains (``--seeds`` chains, model state handed on) is
trained by ``--workers`` ``nntransfer worker`` processes.  While they train,
one of them is killed (SIGKILL) every ``--kill-every`` seconds and replaced
by a new one, ``--kills`` times.  Each epoch lasts ``--epoch-seconds``,
longer than ``--orphan-timeout``: a worker that renewed its job only per
epoch would lose it while alive.  The trainer checkpoints every epoch
through ``cb.checkpoint_store``, so a taken-over job resumes.

At the end it checks and reports: every planned step has exactly one row;
every stored artifact loads and matches its checksum; how many attempts
were started and how many resumed from a checkpoint; the files that no row
references (a worker killed between writing a file and committing its row
leaves one) as ``nntransfer gc`` finds them, and that after ``gc`` the
store holds exactly the referenced files.

Run (uses the database of the environment: DJ_* settings, or an embedded
server in a temporary home; a schema of its own, dropped at the end)::

    python benchmarks/kill_storm.py [--workers 3] [--kills 3] [--seeds 4]

It prints the figures as one JSON line (``--json``) or as text.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

RECIPE = '''
from nntransfer.configs import Experiment, TransferExperiment, config_class_for

Data = config_class_for("kill_storm.storm_data", "dataset")
Net = config_class_for("kill_storm.storm_model", "model")
Train = config_class_for("kill_storm.storm_trainer", "trainer")
seeds = list(range({seeds}))
first = Experiment(Data(), Net(), Train(epochs={epochs}, epoch_seconds={epoch_seconds}, log_file={log!r}), seed=seeds)
second = Experiment(Data(size=6), Net(), Train(epochs={epochs}, epoch_seconds={epoch_seconds}, log_file={log!r}),
                    seed=seeds)
experiments = {{"storm": TransferExperiment([first, second])}}
'''


# -- the functions the recipe names (imported by the workers as module ``kill_storm``) -----------
def storm_data(seed, *, size: int = 4):
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    generator = torch.Generator().manual_seed(seed)
    data = TensorDataset(torch.randn(size, 4, generator=generator), torch.arange(size) % 2)
    return {split: DataLoader(data, batch_size=2) for split in ("train", "validation", "test")}


def storm_model(dataloaders, seed):
    import torch

    torch.manual_seed(seed)
    return torch.nn.Linear(4, 2)


def storm_trainer(model, dataloaders, seed, uid=None, cb=None, *, epochs: int = 3, epoch_seconds: float = 0.6,
                  log_file: str = ""):
    """``epochs`` epochs of ``epoch_seconds``; checkpoints each epoch and resumes from the last checkpoint."""
    import torch

    store = getattr(cb, "checkpoint_store", None)
    last = store.load("last") if store is not None else None
    start = 0
    if last is not None:
        model.load_state_dict(last["model"])
        start = int(last["epoch"]) + 1
    _log(log_file, {"event": "start", "pid": os.getpid(), "from_epoch": start})
    for epoch in range(start, epochs):
        time.sleep(epoch_seconds)
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.add_(0.01)
        if store is not None:
            store.save(epoch, {"epoch": epoch, "model": model.state_dict()})
        if cb is not None:
            cb(epoch=epoch)
    _log(log_file, {"event": "end", "pid": os.getpid()})
    return float(seed), {"epochs": epochs, "resumed_from": start}, model.state_dict()


def _log(log_file: str, record: dict) -> None:
    if log_file:
        with open(log_file, "a") as log:
            log.write(json.dumps(record) + "\n")


# -- the storm ---------------------------------------------------------------------------------
def _environment() -> dict:
    env = dict(os.environ)
    if "DJ_HOST" not in env and env.get("NNTRANSFER_DB") != "server":
        env.setdefault("NNTRANSFER_HOME", tempfile.mkdtemp(prefix="nnt-storm-"))
        env["NNTRANSFER_DB"] = "embedded"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")]))
    env["NNTRANSFER_ALLOWED_PACKAGES"] = " ".join(filter(None, [env.get("NNTRANSFER_ALLOWED_PACKAGES"), "kill_storm"]))
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return env


def _training_pids(log: Path) -> set:
    """Process ids whose last logged event is the start of a training."""
    last = {}
    if log.exists():
        for line in log.read_text().splitlines():
            event = json.loads(line)
            last[event["pid"]] = event["event"]
    return {pid for pid, event in last.items() if event == "start"}


def _start(recipe: Path, schema: str, orphan_timeout: float, env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "nntransfer.cli", "worker", str(recipe), "--schema", schema, "--poll", "0.1",
         "--orphan-timeout", str(orphan_timeout), "--threads", "1"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def storm(workers: int, kills: int, seeds: int, epochs: int, epoch_seconds: float, orphan_timeout: float,
          kill_every: float, timeout: float, rng: random.Random) -> dict:
    """Run the storm in worker processes; check and report from this process (see the module doc)."""
    env = _environment()
    os.environ.update({name: env[name] for name in ("NNTRANSFER_HOME", "NNTRANSFER_DB", "NNTRANSFER_ALLOWED_PACKAGES")
                       if name in env})
    sys.path.insert(0, str(HERE))
    from nntransfer import runner, tables
    from nntransfer.tables.orphans import collect
    from nntransfer.tables.trained import artifact_store

    schema_name = f"nnt_storm_{os.getpid()}_{rng.randrange(16**6):06x}"
    folder = Path(tempfile.mkdtemp(prefix="nnt-storm-run-"))
    log = folder / "events.jsonl"
    recipe_file = folder / "storm_recipe.py"
    recipe_file.write_text(RECIPE.format(seeds=seeds, epochs=epochs, epoch_seconds=epoch_seconds, log=str(log)))
    schema = tables.activate(schema_name)
    try:
        recipe = runner.load_recipe(str(recipe_file))
        runner.insert(recipe)
        began = time.monotonic()
        running = [_start(recipe_file, schema_name, orphan_timeout, env) for _ in range(workers)]
        finished, killed = [], 0
        next_kill = None
        while time.monotonic() - began < timeout:
            if next_kill is None and log.exists():
                next_kill = time.monotonic() + kill_every * rng.uniform(0.5, 1.5)
            if next_kill is not None and killed < kills and time.monotonic() >= next_kill:
                training = _training_pids(log)
                alive = [process for process in running if process.poll() is None and process.pid in training]
                if alive:  # a worker in the middle of a training
                    victim = rng.choice(alive)
                    victim.send_signal(signal.SIGKILL)
                    victim.wait()
                    running.remove(victim)
                    killed += 1
                    running.append(_start(recipe_file, schema_name, orphan_timeout, env))
                next_kill = time.monotonic() + kill_every * rng.uniform(0.5, 1.5)
            for process in [p for p in running if p.poll() is not None]:
                running.remove(process)
                finished.append(process)
            if not running:
                break
            time.sleep(0.05)
        for process in running:  # the time limit ran out: what is left is a failure of the storm
            process.kill()
        outputs = [process.communicate()[0] for process in finished + running]
        wall = time.monotonic() - began

        table = tables.TransferredTrainedModel()
        planned = len(table.plan_table())
        rows = table.to_dicts()
        loaded = 0
        for row in rows:
            key = {name: row[name] for name in table.primary_key}
            table.fetch_state_dict(key)  # reads the file and checks its SHA-256
            loaded += 1
        events = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
        starts = [event for event in events if event["event"] == "start"]
        store = artifact_store()
        orphans = collect([table], store, grace=0.0)
        removed = collect([table], store, grace=0.0, remove=True)
        left = collect([table], store, grace=0.0)
        referenced = {row["model_state"] for row in table.ModelStorage().to_dicts()}
        missing = [path for path in referenced if not store.backend.exists(path)]
        backend = tables.schema.connection.adapter.backend
        return {
            "backend": f"embedded {backend}" if os.environ.get("NNTRANSFER_DB") == "embedded" else backend,
            "workers": workers, "kills": killed, "epoch_s": epoch_seconds, "orphan_timeout_s": orphan_timeout,
            "steps_planned": planned, "steps_done": len(rows), "artifacts_loaded": loaded,
            "attempts": len(starts), "resumed": sum(1 for event in starts if event["from_epoch"] > 0),
            "worker_exit_codes": sorted(p.returncode for p in finished),
            "orphan_files_found": len(orphans.files), "orphan_checkpoint_rows_found": len(orphans.checkpoint_rows),
            "removed_by_gc": len(removed.files) + len(removed.checkpoint_rows),
            "orphans_after_gc": len(left.files) + len(left.checkpoint_rows),
            "referenced_files_missing": len(missing), "checkpoint_rows_left": len(tables.Checkpoint()
                                                                                 & {"target": table.full_table_name}),
            "wall_s": round(wall, 1),
            "timed_out": bool(running),
            "failed_output": [out[-2000:] for process, out in zip(finished + running, outputs)
                              if process.returncode not in (0, -signal.SIGKILL)][:2],
        }
    finally:
        schema.drop(prompt=False)
        store = artifact_store()
        if store.folder_protocol:
            shutil.rmtree(Path(store.spec.get("location", "")) / schema_name, ignore_errors=True)
        shutil.rmtree(folder, ignore_errors=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=4, help="chains of two steps")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--epoch-seconds", type=float, default=0.6)
    parser.add_argument("--orphan-timeout", type=float, default=0.4)
    parser.add_argument("--kill-every", type=float, default=1.0, help="mean seconds between kills")
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--seed", type=int, default=0, help="of the choice of victims and kill times")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON line")
    args = parser.parse_args(argv)
    figures = storm(args.workers, args.kills, args.seeds, args.epochs, args.epoch_seconds, args.orphan_timeout,
                    args.kill_every, args.timeout, random.Random(args.seed))
    if args.json:
        print(json.dumps(figures))
    else:
        for name, value in figures.items():
            print(f"{name:>30}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
