"""Throughput of 2 worker processes against 1 on CPU-bound training jobs (one thread each).

Plans 8 independent trainings of a small MLP on digits, runs them with
``nntransfer worker --jobs 1`` and, on a fresh schema, with ``--jobs 2``,
and prints jobs per minute and the ratio.  Run:

    python benchmarks/transfer_workers.py
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


def timed(jobs: int, recipe: Path, env: dict) -> float:
    env = {**env, "NNTRANSFER_SCHEMA": f"nnt_bench_{secrets.token_hex(3)}", "OMP_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "nntransfer.cli", "worker", str(recipe), "--poll", "0.2"]
    subprocess.run([sys.executable, "-m", "nntransfer.cli", "status", str(recipe)], env=env, check=True,
                   capture_output=True)  # declares the tables, so both runs time training only
    start = time.perf_counter()
    subprocess.run(command + ["--jobs", str(jobs)], env=env, check=True, capture_output=True)
    return time.perf_counter() - start


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
    print(f"1 worker : {one:6.1f} s for 8 jobs ({8 * 60 / one:5.1f} jobs/min)")
    print(f"2 workers: {two:6.1f} s for 8 jobs ({8 * 60 / two:5.1f} jobs/min)")
    print(f"throughput ratio: {one / two:.2f}")


if __name__ == "__main__":
    main()
