"""Multigrid training end to end: coarse + fine chain vs training from scratch, to a target accuracy.

The chain of ``recipes/digits_multigrid.py`` (LeNet-5 with global pooling,
digits split with ``split_seed=0``): 10 epochs at 8x8 (lr 3e-3), then the whole
state is loaded into the same network at 16x16 and training goes on (lr 1e-3)
until the validation accuracy reaches ``--target``.  The baseline trains the
same network at 16x16 from random weights (lr 1e-3) until the same target.

What counts is the whole chain: a head start at 16x16 saves nothing if the
coarse epochs cost more than the fine epochs it saves.  So each variant is
timed from its first training call to the end of the epoch in which the
target is reached (the coarse training included for the chain; building data
and models is the same for both and not timed), and the epochs are counted.
A variant that misses the target within ``--max-epochs`` fine epochs counts
as not reached.  Seeds 1..reps, one repetition per seed, variants interleaved
(chain, then scratch, for each seed); medians and per-seed ratios are printed
as a markdown table.  ``--clock cpu`` counts this process's CPU time instead
of wall time, which other work on a shared machine disturbs less (with one
thread the two agree on an idle machine).

Usage: python benchmarks/multigrid.py [--reps 7] [--target 0.8] [--coarse-epochs 10]
           [--max-epochs 30] [--threads 2] [--clock wall|cpu] [--device cpu]
"""

import argparse
import logging
import statistics
import time

import torch

from nntransfer.datasets.digits import digits_dataset_fn
from nntransfer.models.lenet import lenet5_model_fn
from nntransfer.trainer.standard import standard_trainer

COARSE = {"split_seed": 0}
FINE = {"split_seed": 0, "image_size": 16}
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


class Reached(Exception):
    """Raised by the epoch callback once the target is reached, to stop the run there."""


class Clock:
    """nnfabrik ``cb``: the time at the end of every epoch, and a stop at the target accuracy."""

    def __init__(self, now, target=None):
        self.now = now
        self.target = target
        self.start = now()
        self.epochs = 0
        self.seconds = 0.0

    def __call__(self, epoch, metrics):
        self.epochs, self.seconds = epoch, self.now() - self.start
        if self.target is not None and metrics.get("validation.accuracy", 0.0) >= self.target:
            raise Reached


def train_fine(model, seed, args):
    """Train at 16x16 until the target; ``(epochs, seconds)``, epochs None when it was not reached."""
    clock = Clock(CLOCKS[args.clock], args.target)
    try:
        standard_trainer(
            model, digits_dataset_fn(seed, **FINE), seed, cb=clock, epochs=args.max_epochs, lr=1e-3,
            device=args.device,
        )
    except Reached:
        return clock.epochs, clock.seconds
    return None, clock.seconds


def run_chain(seed, args):
    coarse_data, fine_data = digits_dataset_fn(seed, **COARSE), digits_dataset_fn(seed, **FINE)
    coarse = lenet5_model_fn(coarse_data, seed, global_pool=True)
    fine = lenet5_model_fn(fine_data, seed, global_pool=True)
    clock = Clock(CLOCKS[args.clock])
    standard_trainer(coarse, coarse_data, seed, cb=clock, epochs=args.coarse_epochs, lr=3e-3, device=args.device)
    fine.load_state_dict(coarse.state_dict())
    fine_epochs, fine_seconds = train_fine(fine, seed, args)
    return {"coarse_seconds": clock.seconds, "fine_epochs": fine_epochs, "seconds": clock.seconds + fine_seconds}


def run_scratch(seed, args):
    model = lenet5_model_fn(digits_dataset_fn(seed, **FINE), seed, global_pool=True)
    fine_epochs, fine_seconds = train_fine(model, seed, args)
    return {"fine_epochs": fine_epochs, "seconds": fine_seconds}


def median_epochs(runs):
    reached = [run["fine_epochs"] for run in runs if run["fine_epochs"] is not None]
    return f"{statistics.median(reached):g}" if len(reached) == len(runs) else f"{len(runs) - len(reached)} missed"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--target", type=float, default=0.8, help="validation accuracy to reach at 16x16")
    parser.add_argument("--coarse-epochs", type=int, default=10)
    parser.add_argument("--max-epochs", type=int, default=30, help="fine epochs before a run counts as missed")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    logging.disable(logging.INFO)
    torch.set_num_threads(args.threads)

    warm_up = argparse.Namespace(**{**vars(args), "max_epochs": 1})
    run_scratch(0, warm_up)  # allocator and kernel selection

    chain, scratch = [], []
    for seed in range(1, args.reps + 1):
        chain.append(run_chain(seed, args))
        scratch.append(run_scratch(seed, args))

    print(
        f"LeNet-5 (global pooling) on digits, validation accuracy {args.target} at 16x16; chain = "
        f"{args.coarse_epochs} epochs at 8x8, then 16x16; {args.reps} seeds, {args.threads} thread(s) on "
        f"{args.device}, {args.clock} clock\n"
    )
    print("| variant | 16x16 epochs to target (median) | median s to target | min s | max s |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, runs in (("chain (8x8 + 16x16)", chain), ("scratch (16x16)", scratch)):
        seconds = [run["seconds"] for run in runs]
        print(
            f"| {name} | {median_epochs(runs)} | {statistics.median(seconds):.2f} "
            f"| {min(seconds):.2f} | {max(seconds):.2f} |"
        )
    both = [(c, s) for c, s in zip(chain, scratch) if c["fine_epochs"] and s["fine_epochs"]]
    if not both:
        raise SystemExit("no seed reached the target in both variants: lower --target or raise --max-epochs")
    ratios = sorted(c["seconds"] / s["seconds"] for c, s in both)
    fine_epoch_seconds = statistics.median(s["seconds"] / s["fine_epochs"] for _, s in both)
    coarse_seconds = statistics.median(c["coarse_seconds"] for c in chain)
    print(f"\ntime to target, chain / scratch, per seed: {', '.join(f'{r:.2f}' for r in ratios)}")
    print(f"median ratio: {statistics.median(ratios):.2f} (below 1: the chain saves time)")
    print(
        f"the {args.coarse_epochs} coarse epochs cost {coarse_seconds / fine_epoch_seconds:.1f} fine epochs "
        f"(median coarse training {coarse_seconds:.2f} s, median 16x16 epoch {fine_epoch_seconds:.2f} s)"
    )


if __name__ == "__main__":
    main()
