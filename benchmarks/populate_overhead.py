"""Bookkeeping cost of ``populate`` per key, on the embedded PostgreSQL.

A trainer that returns at once with a 1 MB state_dict isolates what the
library adds around training: fetching configs, reserving the job, storing
the state_dict and inserting the rows.  Three variants run in one process on
one server, interleaved, with the same number of keys:

* ``datajoint-tiny``: a bare DataJoint three-part make that inserts a small row
  (the floor: what DataJoint's job reservation costs);
* ``datajoint-blob``: the same with the 1 MB array in a ``<blob@store>`` column
  (what storing through DataJoint's serializer costs);
* ``nntransfer``: ``TrainedModel.populate(reserve_jobs=True)`` with the trainer
  contract, the state_dict written through the artifact store.

Run: ``python benchmarks/populate_overhead.py [--keys 200] [--repeats 3]``
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
os.environ.setdefault("NNTRANSFER_ALLOWED_PACKAGES", "populate_overhead")  # the functions below, named in rows
os.environ["NNTRANSFER_DB"] = "embedded"

STATE_FLOATS = 262_144  # 1 MiB of float32


def dataset_fn(seed):
    return {"train": None, "validation": None, "test": None}


def model_fn(dataloaders, seed):
    import torch

    return torch.nn.Linear(1, 1)


def instant_trainer(model, dataloaders, seed, uid=None, cb=None):
    import torch

    return 0.5, {"history": {"loss": [1.0]}}, {"weight": torch.zeros(STATE_FLOATS)}


def run(keys: int, repeats: int) -> dict[str, list[float]]:
    import numpy as np
    import torch  # noqa: F401  (a worker has torch loaded; keep its import out of the timings)

    from nntransfer import tables
    from nntransfer.db import import_datajoint

    dj = import_datajoint()
    schema = tables.activate(f"nnt_bench_{os.getpid()}")
    raw = dj.Schema(f"nnt_bench_raw_{os.getpid()}", connection=schema.connection)
    store = tables.ArtifactStore.default().name

    @raw
    class Source(dj.Manual):
        definition = """
        source_id: int32
        """

    @raw
    class Tiny(dj.Computed):
        definition = """
        -> Source
        ---
        score: float64
        """

        def make_fetch(self, key):
            return ((Source & key).fetch1("source_id"),)

        def make_compute(self, key, source_id):
            return (0.5,)

        def make_insert(self, key, score):
            self.insert1(dict(key, score=score))

    @raw
    class Blob(dj.Computed):
        definition = f"""
        -> Source
        ---
        score: float64
        state: <blob@{store}>
        """

        def make_fetch(self, key):
            return ((Source & key).fetch1("source_id"),)

        def make_compute(self, key, source_id):
            return (0.5, np.zeros(STATE_FLOATS, dtype=np.float32))

        def make_insert(self, key, score, state):
            self.insert1(dict(key, score=score, state=state))

    tables.Dataset().add_entry(dataset_fn="populate_overhead.dataset_fn", dataset_config={})
    tables.Model().add_entry(model_fn="populate_overhead.model_fn", model_config={})
    tables.Trainer().add_entry(trainer_fn="populate_overhead.instant_trainer", trainer_config={})

    variants = {"datajoint-tiny": Tiny, "datajoint-blob": Blob, "nntransfer": tables.TrainedModel}
    timings: dict[str, list[float]] = {name: [] for name in variants}
    try:
        for repeat in range(repeats):
            seeds = [{"seed": repeat * keys + i} for i in range(keys)]
            tables.Seed().insert(seeds)
            Source().insert([{"source_id": s["seed"]} for s in seeds])
            for name, table in variants.items():
                start = time.perf_counter()
                result = table.populate(reserve_jobs=True)
                elapsed = time.perf_counter() - start
                if result["success_count"] != keys:
                    raise RuntimeError(f"{name}: populated {result['success_count']} of {keys} keys")
                timings[name].append(1000 * elapsed / keys)
    finally:
        raw.drop()
        schema.drop()
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    timings = run(args.keys, args.repeats)
    floor = statistics.median(timings["datajoint-tiny"])
    print(f"populate bookkeeping, {args.keys} keys x {args.repeats} repeats, 1 MiB state, embedded PostgreSQL")
    print("| variant | ms per key (median) | min | max | vs datajoint-tiny |")
    print("|---|---|---|---|---|")
    for name, values in timings.items():
        median = statistics.median(values)
        print(f"| {name} | {median:.1f} | {min(values):.1f} | {max(values):.1f} | {median / floor:.2f}x |")


if __name__ == "__main__":
    main()
