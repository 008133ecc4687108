"""Fixed feature extractor: frozen backbone in every epoch vs features computed once.

Scenario (seeds 003/004): a backbone pretrained on digits 0-4 is reused,
frozen, for digits 5-9; only a new classifier trains.  Two ways, same head
(identical initial weights), same data, same optimizer, same epochs:

  a) frozen: the full model trains with the ``finetuning`` module
     (``head="classifier"``), so the backbone runs forward on every batch of
     every epoch (training and validation);
  b) cached: ``cached_feature_loaders`` runs the backbone once per split,
     then the same head trains on the feature vectors.

The cached timing includes the feature extraction.  Both runs start from
freshly built loaders (a loader's shuffling generator advances as it is read,
so every run gets its own) and a ready model; building them is the same for
both and not timed.  Variants run interleaved, several repetitions, medians compared; the
final test accuracies must agree (features are the same up to floating-point
rounding between batch sizes, so predictions agree).  Prints a markdown table.

Usage: python benchmarks/feature_extractor.py [--reps 5] [--epochs 10]
           [--image-size 32] [--width 16] [--threads 2]
"""

import argparse
import copy
import logging
import statistics
import time

import torch

from nntransfer.datasets.cached_features import cached_feature_loaders
from nntransfer.datasets.digits import digits_dataset_fn
from nntransfer.models.heads import replace_head
from nntransfer.models.resnet import resnet_model_fn
from nntransfer.trainer.standard import standard_trainer

SEED = 0
TRAINING = {"optimizer": "adam", "lr": 1e-2}


def pretrained_backbone(image_size: int, width: int):
    """A small ResNet-18 trained briefly on digits 0-4 (not timed)."""
    source = digits_dataset_fn(SEED, class_range=[0, 4], image_size=image_size, split_seed=SEED)
    model = resnet_model_fn(source, SEED, depth=18, base_width=width)
    standard_trainer(model, source, SEED, epochs=3, lr=3e-3)
    return model


def target_loaders(image_size: int):
    return digits_dataset_fn(SEED, class_range=[5, 9], image_size=image_size, split_seed=SEED)


def new_head_model(pretrained):
    """The pretrained model with a fresh classifier, seeded, so every run starts equal."""
    model = copy.deepcopy(pretrained)
    replace_head(model, 5, seed=SEED)
    return model


def run_frozen(pretrained, image_size, epochs):
    model, loaders = new_head_model(pretrained), target_loaders(image_size)
    start = time.perf_counter()
    _, output, _ = standard_trainer(
        model, loaders, SEED, epochs=epochs, modules={"finetuning": {"head": "classifier"}}, **TRAINING
    )
    return time.perf_counter() - start, output["final"]["test.accuracy"]


def run_cached(pretrained, image_size, epochs):
    model, loaders = new_head_model(pretrained), target_loaders(image_size)
    head = model.classifier
    start = time.perf_counter()
    feature_loaders = cached_feature_loaders(model, loaders, layer="features", seed=SEED)
    _, output, _ = standard_trainer(head, feature_loaders, SEED, epochs=epochs, **TRAINING)
    return time.perf_counter() - start, output["final"]["test.accuracy"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--width", type=int, default=16, help="ResNet-18 base width")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    logging.disable(logging.INFO)
    torch.set_num_threads(args.threads)

    pretrained = pretrained_backbone(args.image_size, args.width)
    run_cached(pretrained, args.image_size, 1)  # warm-up: allocator and kernel selection

    times = {"frozen": [], "cached": []}
    accuracies = {"frozen": set(), "cached": set()}
    for _ in range(args.reps):
        for name, run in (("frozen", run_frozen), ("cached", run_cached)):
            seconds, accuracy = run(pretrained, args.image_size, args.epochs)
            times[name].append(seconds)
            accuracies[name].add(round(accuracy, 6))

    frozen, cached = statistics.median(times["frozen"]), statistics.median(times["cached"])
    samples = {split: len(loader.dataset) for split, loader in target_loaders(args.image_size).items()}
    print(
        f"ResNet-18 (base width {args.width}) on digits 5-9 at {args.image_size}x{args.image_size}, "
        f"{args.epochs} epochs, {args.reps} repetitions, {args.threads} thread(s), samples {samples}\n"
    )
    print("| variant | median s | min s | max s | test accuracy |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name in ("frozen", "cached"):
        runs = times[name]
        accuracy = ", ".join(f"{a:.4f}" for a in sorted(accuracies[name]))
        print(f"| {name} | {statistics.median(runs):.2f} | {min(runs):.2f} | {max(runs):.2f} | {accuracy} |")
    print(f"\nspeed-up (median frozen / median cached): {frozen / cached:.1f}x")
    same = accuracies["frozen"] == accuracies["cached"] and len(accuracies["frozen"]) == 1
    print(f"same test accuracy in every run: {same}")
    if not same:
        raise SystemExit(f"accuracies differ: {accuracies}")


if __name__ == "__main__":
    main()
