"""Overhead of nntransfer's main loop (nntransfer.trainer.Loop) against a hand-written PyTorch loop.

Same MLP, same in-memory batches, same optimizer and epochs through

  a) a hand-written loop (train + validation each epoch, loss and accuracy
     summed as tensors and read once per epoch),
  b) Loop with no optional modules,
  c) Loop with early stopping, checkpointing every epoch to a local folder,
     progress (log line, no bar) and the history tracking it always does.

Variants run interleaved, several repetitions, medians compared.  Peak memory
(max RSS) is measured per variant in a fresh subprocess.  Prints a markdown
table.  Usage: python benchmarks/trainer_overhead.py [--reps 7] [--epochs 3]
"""

import argparse
import logging
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import torch

from nntransfer.trainer.loop import Loop

FEATURES, HIDDEN, CLASSES = 128, 256, 10


def make_batches(n, batch_size, seed):
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randn(n, FEATURES, generator=generator)
    targets = torch.randint(0, CLASSES, (n,), generator=generator)
    return [(inputs[i : i + batch_size], targets[i : i + batch_size]) for i in range(0, n, batch_size)]


def make_model():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(FEATURES, HIDDEN), torch.nn.ReLU(),
        torch.nn.Linear(HIDDEN, HIDDEN), torch.nn.ReLU(),
        torch.nn.Linear(HIDDEN, CLASSES),
    )


def hand_loop(loaders, epochs):
    model = make_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    history = []
    for _ in range(epochs):
        model.train()
        loss_sum, correct, count = 0.0, 0, 0
        for inputs, targets in loaders["train"]:
            outputs = model(inputs)
            loss = loss_fn(outputs, targets)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            n = targets.shape[0]
            loss_sum = loss_sum + loss.detach() * n
            correct = correct + (outputs.argmax(1) == targets).sum()
            count += n
        epoch = {"train.loss": (loss_sum / count).item(), "train.accuracy": (correct / count).item()}
        model.eval()
        loss_sum, correct, count = 0.0, 0, 0
        with torch.no_grad():
            for inputs, targets in loaders["validation"]:
                outputs = model(inputs)
                n = targets.shape[0]
                loss_sum = loss_sum + loss_fn(outputs, targets) * n
                correct = correct + (outputs.argmax(1) == targets).sum()
                count += n
        epoch.update({"validation.loss": (loss_sum / count).item(), "validation.accuracy": (correct / count).item()})
        history.append(epoch)
    return history


def loop_plain(loaders, epochs):
    return Loop(make_model(), loaders, epochs=epochs, lr=1e-3, device="cpu").fit()


def loop_with_modules(loaders, epochs):
    with tempfile.TemporaryDirectory() as folder:
        modules = {
            "early_stopping": {"patience": 50},
            "checkpointing": {"every": 1, "folder": folder},
            "progress": {"bar": False},
        }
        return Loop(make_model(), loaders, epochs=epochs, lr=1e-3, device="cpu", modules=modules).fit()


VARIANTS = {"a_hand": hand_loop, "b_loop": loop_plain, "c_modules": loop_with_modules}


def peak_rss_mib(variant, epochs, batch_size, threads):
    """Max RSS of a fresh process that runs one variant once."""
    out = subprocess.run(
        [sys.executable, __file__, "--only", variant, "--epochs", str(epochs),
         "--batch-size", str(batch_size), "--threads", str(threads)],
        check=True, capture_output=True, text=True,
    ).stdout
    return float(out.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--only", choices=sorted(VARIANTS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    logging.getLogger("nntransfer").setLevel(logging.WARNING)
    loaders = {"train": make_batches(8192, args.batch_size, 1), "validation": make_batches(2048, 256, 2)}

    if args.only:
        VARIANTS[args.only](loaders, args.epochs)
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        return

    for run in VARIANTS.values():  # warm-up: allocator, kernels, imports
        run(loaders, 1)
    times = {name: [] for name in VARIANTS}
    for _ in range(args.reps):
        for name, run in VARIANTS.items():
            start = time.perf_counter()
            run(loaders, args.epochs)
            times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(values) for name, values in times.items()}
    base = medians["a_hand"]
    print(f"torch {torch.__version__}, {args.threads} thread(s), {len(loaders['train'])} train batches of "
          f"{args.batch_size}, {args.epochs} epochs, {args.reps} interleaved repetitions\n")
    best = min(times["a_hand"])
    print("| variant | median s | min s | median ratio to a | min ratio to a | peak RSS MiB |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, values in times.items():
        rss = peak_rss_mib(name, args.epochs, args.batch_size, args.threads)
        print(f"| {name} | {medians[name]:.3f} | {min(values):.3f} | {medians[name] / base:.3f} "
              f"| {min(values) / best:.3f} | {rss:.0f} |")


if __name__ == "__main__":
    main()
