"""Cached features on 100k samples: peak memory of the chunked file cache vs features held in memory.

The script writes MNIST-format idx files (``--samples`` training images of
28x28, 1,000 test images) once; the images stay on disk (the dataset reads
them one at a time).  A backbone (an MLP whose ``features`` give
``--width`` floats per sample, 2048 by default: 8 KiB a sample) is frozen, its
features are cached for every split, and a linear head trains one epoch on
them.  Each variant runs in its own process so that its peak resident memory
(``ru_maxrss``) is its own:

  a) in memory (how the cache worked before): ``extract_features`` returns
     one array per split, which the head's loader holds;
  b) chunked: ``cached_feature_loaders`` writes the features to a file in
     chunks of ``CHUNK_BYTES`` and the head's loader reads rows from it.

Growth is the peak resident memory minus the resident memory after imports
and data set-up (the kernel's peak counter is reset there, so earlier peaks
do not hide later ones).  The model's memory is measured too: the growth
from building it and running one batch through its ``features`` (its
parameters and one batch's activations, what running it takes whatever the
data size).  The bound is one chunk of features plus the model, plus 20 %.

Usage: python benchmarks/cached_features_memory.py [--samples 100000] [--width 2048]
"""

import argparse
import json
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def write_mnist(root: Path, samples: int) -> None:
    folder = root / "MNIST" / "raw"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for prefix, count in (("train", samples), ("t10k", 1000)):
        labels = np.tile(np.arange(10, dtype=np.uint8), count // 10)
        with (folder / f"{prefix}-images-idx3-ubyte").open("wb") as handle:
            handle.write(struct.pack(">IIII", 2051, len(labels), 28, 28))
            for start in range(0, len(labels), 10_000):
                block = rng.integers(0, 256, (min(10_000, len(labels) - start), 28, 28), dtype=np.uint8)
                handle.write(block.tobytes())
        (folder / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, len(labels)) + labels.tobytes())


def memory_mb(field: str) -> float:
    """``VmRSS`` (now) or ``VmHWM`` (peak since the last reset) of this process, in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status (this benchmark needs Linux)")


def reset_peak() -> float:
    Path("/proc/self/clear_refs").write_text("5")
    return memory_mb("VmRSS")


def run_variant(variant: str, root: str, width: int) -> dict:
    """One variant in this process: cache the features of every split, train the head one epoch."""
    import torch

    from nntransfer.datasets import cached_features
    from nntransfer.datasets.tensor_dataset import ImageTensorDataset
    from nntransfer.datasets.loaders import make_loader
    from nntransfer.datasets.vision import mnist_dataset_fn
    from nntransfer.models.mlp import mlp_model_fn
    from nntransfer.transfer.features import extract_features

    torch.set_num_threads(2)
    loaders = mnist_dataset_fn(0, root=root, batch_size=256, flatten=True)
    baseline = reset_peak()
    model = mlp_model_fn(loaders, 0, hidden_sizes=[width])
    with torch.no_grad():
        model.features(next(iter(loaders["test"]))[0])
    model_mb = memory_mb("VmHWM") - baseline
    start = time.perf_counter()
    if variant == "chunked":
        cached = cached_features.cached_feature_loaders(model, loaders, layer="features")
    else:
        cached = {}
        for split, loader in loaders.items():
            features = torch.from_numpy(extract_features(model, loader, layer="features"))
            source = loader.dataset
            dataset = ImageTensorDataset(features, source.labels, classes=source.classes)
            cached[split] = make_loader(dataset, split, 256, 0)
    head = model.classifier
    optimizer = torch.optim.SGD(head.parameters(), lr=0.01)
    for x, y in cached["train"]:
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(head(x), y).backward()
        optimizer.step()
    seconds = time.perf_counter() - start
    rows = sum(len(loader.dataset) for loader in loaders.values())
    return {
        "variant": variant,
        "features_mb": rows * width * 4 / 2**20,
        "chunk_mb": cached_features.CHUNK_BYTES / 2**20,
        "model_mb": model_mb,
        "growth_mb": memory_mb("VmHWM") - baseline,
        "seconds": seconds,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=100_000)
    parser.add_argument("--width", type=int, default=2048)
    parser.add_argument("--variant", choices=["memory", "chunked"], help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        print(json.dumps(run_variant(args.variant, args.root, args.width)))
        return

    with tempfile.TemporaryDirectory() as root:
        write_mnist(Path(root), args.samples)
        results = []
        for variant in ("memory", "chunked"):
            command = [sys.executable, __file__, "--variant", variant, "--root", root, "--width", str(args.width)]
            output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            results.append(json.loads(output.strip().splitlines()[-1]))

    print(f"{args.samples} training samples (+1000 test), features of {args.width} floats, "
          f"{results[0]['features_mb']:.0f} MiB of features in all\n")
    print("| variant | peak growth MiB | bound MiB (1.2 x (chunk + model)) | cache + 1 head epoch s |")
    print("| --- | ---: | ---: | ---: |")
    for result in results:
        bound = 1.2 * (result["chunk_mb"] + result["model_mb"])
        name = "features in memory" if result["variant"] == "memory" else "chunked file cache"
        print(f"| {name} | {result['growth_mb']:.0f} | {bound:.0f} | {result['seconds']:.1f} |")
    chunked = results[1]
    print(f"\nchunk {chunked['chunk_mb']:.0f} MiB, model (parameters and one batch) {chunked['model_mb']:.1f} MiB; "
          f"chunked growth "
          f"{chunked['growth_mb'] / (chunked['chunk_mb'] + chunked['model_mb']):.2f} x (chunk + model)")


if __name__ == "__main__":
    main()
