"""Throughput of 2 worker processes against 1 on CPU-bound training jobs (one thread each).

Plans 8 independent trainings of a small MLP on digits, runs them with
``nntransfer worker --jobs 1`` and, on a fresh schema, with ``--jobs 2``,
and prints jobs per minute and the ratio, twice:

* wall: from starting the command to its end, process start-up (importing
  torch, connecting) included;
* work: from the first job's reservation to the last job's completion, read
  from DataJoint's jobs table (kept with ``DJ_JOBS_KEEP_COMPLETED``): the
  rate a long-running cluster worker sustains.

Run:  python benchmarks/transfer_workers.py
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RECIPE = '''
from nntransfer.configs import Experiment, config_class_for

Digits = config_class_for("nntransfer.datasets.digits.digits_dataset_fn", "dataset")
Mlp = config_class_for("nntransfer.models.mlp.mlp_model_fn", "model")
Train = config_class_for("nntransfer.trainer.standard.standard_trainer", "trainer")
experiments = {"cpu": Experiment(Digits(batch_size=32), Mlp(hidden_sizes=[256, 256]), Train(epochs=20),
                                 seed=list(range(8)))}
'''


WORK_SPAN = """
from nntransfer import tables
tables.activate()
jobs = tables.TransferredTrainedModel.jobs.completed
start, end = min(jobs.to_arrays("reserved_time")), max(jobs.to_arrays("completed_time"))
print((end - start).total_seconds())
"""


def timed(jobs: int, recipe: Path, env: dict) -> tuple[float, float]:
    env = {**env, "NNTRANSFER_SCHEMA": f"nnt_bench_{secrets.token_hex(3)}", "OMP_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1", "DJ_JOBS_KEEP_COMPLETED": "true"}
    command = [sys.executable, "-m", "nntransfer.cli", "worker", str(recipe), "--poll", "0.2"]
    subprocess.run([sys.executable, "-m", "nntransfer.cli", "status", str(recipe)], env=env, check=True,
                   capture_output=True)  # declares the tables, so both runs time training only
    start = time.perf_counter()
    subprocess.run(command + ["--jobs", str(jobs)], env=env, check=True, capture_output=True)
    wall = time.perf_counter() - start
    span = subprocess.run([sys.executable, "-c", WORK_SPAN], env=env, capture_output=True, text=True)
    if span.returncode:
        raise RuntimeError(span.stderr)
    return wall, float(span.stdout.strip().splitlines()[-1])


def main() -> None:
    home = tempfile.mkdtemp(prefix="nnt-bench-")
    env = {**os.environ, "NNTRANSFER_HOME": home}
    recipe = Path(home) / "cpu_recipe.py"
    recipe.write_text(RECIPE)
    try:
        one = timed(1, recipe, env)
        two = timed(2, recipe, env)
    finally:
        subprocess.run([sys.executable, "-m", "nntransfer.cli", "db", "stop"], env=env, capture_output=True)
    print("| workers | wall s | wall jobs/min | work s | work jobs/min |")
    print("|---|---|---|---|---|")
    for count, (wall, work) in ((1, one), (2, two)):
        print(f"| {count} | {wall:.1f} | {8 * 60 / wall:.1f} | {work:.1f} | {8 * 60 / work:.1f} |")
    print(f"throughput ratio 2 vs 1: wall {one[0] / two[0]:.2f}, work {one[1] / two[1]:.2f}")


if __name__ == "__main__":
    main()
