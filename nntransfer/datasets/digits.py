"""scikit-learn's bundled handwritten digits (8x8, 10 classes, 1797 samples).

The data ships inside scikit-learn, so this dataset needs no download and no
files: it is the default for tests, examples and quick transfer experiments.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.datasets import load_digits
from torch.utils.data import DataLoader

from nntransfer.datasets.loaders import build_image_loaders

DIGITS_MAX_VALUE = 16.0


def digits_dataset_fn(
    seed: int,
    *,
    batch_size: int = 64,
    validation_fraction: float = 0.2,
    test_fraction: float = 0.2,
    split_seed: int | None = None,
    flatten: bool = False,
    image_size: int | None = None,
    classes: list[int] | None = None,
    class_range: list[int] | None = None,
    examples_per_class: int | None = None,
    train_subset: float | None = None,
    normalize: bool = True,
    augmentation: dict | None = None,
    transfer_data: dict | None = None,
    return_index: bool = False,
    num_workers: int = 0,
) -> dict[str, DataLoader]:
    """Digits as ``{"train", "validation", "test"}`` loaders (nnfabrik dataset contract).

    Args:
        seed: seeds the split (unless ``split_seed`` is given), the training
            shuffle and the augmentation.
        batch_size: samples per batch in all three loaders.
        validation_fraction, test_fraction: shares of the (filtered) data,
            split stratified by class.
        split_seed: seed of the split alone, to keep one split across seeds.
        flatten: return inputs as 64-vectors (or ``image_size**2``) instead of
            ``(1, 8, 8)`` images.
        image_size: upsample (bilinear) to ``image_size x image_size``, e.g. 16
            or 32 for CNNs built for larger inputs.
        classes: keep only these labels; they are renumbered ``0..k-1`` in
            sorted order.  ``class_range`` = ``[lo, hi]`` (inclusive) does the same
            for a range.  Give at most one of them.
        examples_per_class: k-shot training split: k samples per class, seeded.
        train_subset: keep this stratified fraction of the training split.
        normalize: standardise each channel with the training split's mean/std.
        augmentation: training-split perturbations, e.g.
            ``{"shift": 1, "rotation": 10, "noise": 0.05}`` (pixels, degrees,
            std on the [0, 1] scale); ``None`` for none.
        transfer_data: ``{split: {name: array}}`` from a previous step; rows are
            aligned with each split's sample order and appear in batches as
            ``(x, y, {name: ..., "index": ...})``.
        return_index: add ``{"index": ...}`` extras even without transfer data,
            so a consumer can align outputs of a shuffled loader.
        num_workers: loader worker processes.

    The datasets carry ``num_classes``, ``classes`` (original labels) and
    ``input_shape``, which the model builders read.
    """
    digits = load_digits()
    images = torch.as_tensor(digits.images, dtype=torch.float32).unsqueeze(1)
    return build_image_loaders(
        seed,
        images,
        np.asarray(digits.target),
        scale=1.0 / DIGITS_MAX_VALUE,
        batch_size=batch_size,
        validation_fraction=validation_fraction,
        test_fraction=test_fraction,
        split_seed=split_seed,
        flatten=flatten,
        image_size=image_size,
        classes=classes,
        class_range=class_range,
        examples_per_class=examples_per_class,
        train_subset=train_subset,
        normalize=normalize,
        augmentation=augmentation,
        transfer_data=transfer_data,
        return_index=return_index,
        num_workers=num_workers,
    )
