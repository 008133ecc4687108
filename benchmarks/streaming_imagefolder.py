"""Streaming image folder: nntransfer's dataset vs torchvision's ImageFolder + DataLoader.

The script writes ``--files`` small JPEGs (smooth random colour fields of
``--source-size`` pixels, 10 class folders) once, then reads one epoch of
them repeatedly through

  a) torchvision: ``ImageFolder`` with ``Resize((S, S))``, ``ToTensor()``,
     ``Normalize(mean, std)`` and a shuffling ``DataLoader``;
  b) nntransfer: ``image_folder_dataset_fn`` with ``image_size=S`` and
     ``normalize={"mean", "std"}`` (the same resize, scaling and
     normalisation), its training loader;

with the same batch size and worker processes, interleaved, ``--reps``
repetitions each.  Throughput is images per second of a full epoch
(nntransfer's training split holds ``1 - 2 * --held-out`` of the files),
including the workers' start.  Prints a markdown table and the ratio of the
medians (nntransfer / torchvision).

Usage: python benchmarks/streaming_imagefolder.py [--files 20000] [--workers 2]
           [--batch-size 256] [--image-size 32] [--reps 5] [--root DIR]
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torchvision
from PIL import Image
from torch.utils.data import DataLoader
from torchvision import transforms

from nntransfer.datasets.vision import image_folder_dataset_fn

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
CLASSES = 10


def write_images(root: Path, count: int, size: int) -> None:
    """``count`` JPEGs under ``root/class_k/``, unless they are there already."""
    if len(list(root.glob("class_*/*.jpg"))) == count:
        return
    rng = np.random.default_rng(0)
    for index in range(count):
        folder = root / f"class_{index % CLASSES}"
        folder.mkdir(parents=True, exist_ok=True)
        corners = rng.integers(0, 256, (2, 2, 3), dtype=np.uint8)
        image = Image.fromarray(corners).resize((size, size), Image.BILINEAR)
        image.save(folder / f"{index:07d}.jpg", quality=90)


def torchvision_epoch(root, image_size, batch_size, workers):
    transform = transforms.Compose(
        [transforms.Resize((image_size, image_size)), transforms.ToTensor(), transforms.Normalize(MEAN, STD)]
    )
    dataset = torchvision.datasets.ImageFolder(str(root), transform=transform)
    loader = DataLoader(
        dataset, batch_size=batch_size, shuffle=True, num_workers=workers,
        generator=torch.Generator().manual_seed(0),
    )
    return _timed_epoch(loader)


def nntransfer_epoch(root, image_size, batch_size, workers, held_out):
    loaders = image_folder_dataset_fn(
        0, root=str(root), image_size=image_size, batch_size=batch_size, num_workers=workers,
        normalize={"mean": MEAN, "std": STD}, validation_fraction=held_out, test_fraction=held_out,
    )
    return _timed_epoch(loaders["train"])


def _timed_epoch(loader):
    start = time.perf_counter()
    images = sum(len(batch[1]) for batch in loader)
    return images / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--source-size", type=int, default=64)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--held-out", type=float, default=0.05)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--root", default=None, help="folder for the images (default: a temporary one)")
    args = parser.parse_args()
    torch.set_num_threads(1)

    with tempfile.TemporaryDirectory() as temporary:
        root = Path(args.root or temporary)
        write_images(root, args.files, args.source_size)
        rates = {"torchvision ImageFolder + DataLoader": [], "nntransfer image_folder_dataset_fn": []}
        for _ in range(args.reps):
            rates["torchvision ImageFolder + DataLoader"].append(
                torchvision_epoch(root, args.image_size, args.batch_size, args.workers)
            )
            rates["nntransfer image_folder_dataset_fn"].append(
                nntransfer_epoch(root, args.image_size, args.batch_size, args.workers, args.held_out)
            )

    print(f"{args.files} JPEGs of {args.source_size}px -> {args.image_size}px, batch {args.batch_size}, "
          f"{args.workers} workers, {args.reps} interleaved epochs each\n")
    print("| variant | median images/s | min | max |")
    print("| --- | ---: | ---: | ---: |")
    for name, values in rates.items():
        print(f"| {name} | {statistics.median(values):.0f} | {min(values):.0f} | {max(values):.0f} |")
    baseline, ours = (statistics.median(values) for values in rates.values())
    print(f"\nthroughput ratio nntransfer / torchvision: {ours / baseline:.3f}")


if __name__ == "__main__":
    main()
