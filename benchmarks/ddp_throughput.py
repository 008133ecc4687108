"""DDP throughput on CPU: one training on 2 processes (gloo) vs 1 process, same global batch.

A CPU-bound model (a ResNet-18 of width ``--width`` on ``--samples``
synthetic 3x32x32 images, 10 classes) trains ``--epochs`` epochs with
``standard_trainer``, global batch ``--batch-size``, in three ways:

  a) 1 process, 1 torch thread;
  b) 1 process, ``--processes`` torch threads (the cores used by torch's intra-op parallelism);
  c) ``strategy="ddp"``, ``devices=--processes``: that many processes of 1 thread each.

Throughput is training samples per second from the end of the first epoch to
the end of the last (rank 0's ``cb`` stamps each epoch), so process start-up
and the first epoch's warm-up are left out alike for all three.  The
variants run interleaved, ``--reps`` times each; the script prints a
markdown table and the ratios of the medians.

Usage: python benchmarks/ddp_throughput.py [--reps 3] [--epochs 3] [--samples 6000]
           [--width 8] [--batch-size 128] [--processes 2]
"""

import argparse
import statistics
import time

import numpy as np
import torch

from nntransfer.datasets.loaders import build_image_loaders
from nntransfer.models.resnet import resnet_model_fn
from nntransfer.trainer.standard import standard_trainer


class EpochClock:
    """A trainer ``cb`` that stamps the end of every epoch (rank 0 calls it)."""

    def __init__(self):
        self.stamps = []

    def __call__(self, epoch=None):
        self.stamps.append(time.perf_counter())


def loaders(samples: int, batch_size: int):
    rng = np.random.default_rng(0)
    images = torch.from_numpy(rng.integers(0, 256, (samples, 3, 32, 32), dtype=np.uint8))
    labels = np.arange(samples) % 10
    return build_image_loaders(0, images, labels, scale=1 / 255, batch_size=batch_size,
                               validation_fraction=0.05, test_fraction=0.05)


def run(args, threads: int, processes: int) -> float:
    data = loaders(args.samples, args.batch_size)
    model = resnet_model_fn(data, 0, depth=18, base_width=args.width)
    clock = EpochClock()
    torch.set_num_threads(threads * processes if processes > 1 else threads)  # ddp gives each rank its share
    ddp = {"strategy": "ddp", "devices": processes} if processes > 1 else {}
    standard_trainer(model, data, 0, cb=clock, epochs=args.epochs, device="cpu", optimizer="sgd", lr=0.05,
                     validate_every=0, final_splits=("test",), score_metric="test.accuracy", **ddp)
    trained = len(data["train"].dataset) * (args.epochs - 1)
    return trained / (clock.stamps[-1] - clock.stamps[0])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--samples", type=int, default=6000)
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--processes", type=int, default=2)
    args = parser.parse_args()
    variants = {
        "1 process, 1 thread": (1, 1),
        f"1 process, {args.processes} threads": (args.processes, 1),
        f"ddp, {args.processes} processes of 1 thread": (1, args.processes),
    }
    rates = {name: [] for name in variants}
    for _ in range(args.reps):
        for name, (threads, processes) in variants.items():
            rates[name].append(run(args, threads, processes))

    print(f"ResNet-18 (width {args.width}), {args.samples} images 3x32x32, global batch {args.batch_size}, "
          f"{args.epochs} epochs (the first not timed), {args.reps} interleaved repetitions\n")
    print("| variant | median samples/s | min | max | vs 1 process, 1 thread |")
    print("| --- | ---: | ---: | ---: | ---: |")
    base = statistics.median(next(iter(rates.values())))
    for name, values in rates.items():
        median = statistics.median(values)
        print(f"| {name} | {median:.0f} | {min(values):.0f} | {max(values):.0f} | {median / base:.2f}x |")


if __name__ == "__main__":
    main()
