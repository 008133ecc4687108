"""Choosing which samples go where: class filters, seeded stratified splits, k-shot.

Every dataset builder in this package runs its labels through these functions,
so a config option such as ``classes`` or ``examples_per_class`` means the same
thing for digits, MNIST, CIFAR and image folders.  All functions work on label
arrays and return index arrays; they never touch the images, which keeps them
cheap for large datasets and easy to test.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from sklearn.model_selection import train_test_split

from nntransfer.errors import ConfigError


def select_classes(
    labels: np.ndarray,
    classes: Sequence[int] | None = None,
    class_range: Sequence[int] | None = None,
) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Keep the samples of the chosen classes and relabel them to ``0..k-1``.

    ``classes`` lists original labels; ``class_range`` is ``[lo, hi]`` with
    both ends included.  Relabelling follows the sorted original labels, so
    ``classes=[7, 3]`` maps 3 to 0 and 7 to 1 whatever the order in the config:
    two configs that select the same classes then train the same head.

    Returns ``(kept_indices, new_labels, original_classes)``.
    """
    labels = np.asarray(labels)
    present = sorted(int(c) for c in np.unique(labels))
    if classes is not None and class_range is not None:
        raise ConfigError(
            "Give either `classes` (a list of labels) or `class_range` ([lo, hi]), not both."
        )
    if class_range is not None:
        if len(class_range) != 2 or int(class_range[0]) > int(class_range[1]):
            raise ConfigError(
                f"`class_range` must be [lo, hi] with lo <= hi (both included); got {list(class_range)!r}."
            )
        lo, hi = int(class_range[0]), int(class_range[1])
        chosen = [c for c in present if lo <= c <= hi]
    elif classes is not None:
        chosen = sorted({int(c) for c in classes})
        unknown = [c for c in chosen if c not in present]
        if unknown:
            raise ConfigError(
                f"`classes` names labels {unknown} that the dataset does not have; "
                f"its labels are {present}."
            )
    else:
        chosen = present
    if not chosen:
        raise ConfigError(
            f"The class filter selects no class; the dataset's labels are {present}."
        )
    kept, new_labels = relabel(labels, chosen)
    return kept, new_labels, chosen


def relabel(labels: np.ndarray, chosen: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Keep samples whose label is in ``chosen`` (sorted) and number them by position.

    Used on its own for an official test set, which must follow the training
    set's mapping even if it happens to lack a class.
    """
    labels = np.asarray(labels)
    kept = np.flatnonzero(np.isin(labels, chosen))
    new_labels = np.searchsorted(np.asarray(chosen), labels[kept]).astype(np.int64)
    return kept, new_labels


def check_fraction(name: str, value: float, allow_zero: bool = False) -> float:
    """Reject fractions outside (0, 1) with a message naming the option."""
    value = float(value)
    low_ok = value >= 0.0 if allow_zero else value > 0.0
    if not (low_ok and value < 1.0):
        bounds = "[0, 1)" if allow_zero else "(0, 1)"
        raise ConfigError(f"`{name}` must lie in {bounds}; got {value}.")
    return value


def stratified_split(
    labels: np.ndarray,
    fractions: Sequence[float],
    seed: int,
) -> list[np.ndarray]:
    """Split ``range(len(labels))`` into parts of the given fractions, stratified by label.

    ``fractions`` are the sizes of all parts but the first, which takes the
    rest.  Each returned index array is sorted, so a split's sample order
    depends only on the seed and the options, not on how the split was drawn;
    that order is what transfer data rows are aligned with.
    """
    labels = np.asarray(labels)
    remaining = np.arange(len(labels))
    parts = []
    left = 1.0
    for fraction in fractions:
        share = fraction / left
        remaining, part = _split_off(remaining, labels, share, seed + len(parts))
        parts.append(np.sort(part))
        left -= fraction
    return [np.sort(remaining)] + parts


def _split_off(indices, labels, share, seed):
    try:
        return train_test_split(
            indices, test_size=share, stratify=labels[indices], random_state=seed
        )
    except ValueError as error:
        raise ConfigError(
            f"Cannot split {len(indices)} samples stratified by class with a share of "
            f"{share:.3f}: {error}. Use larger fractions or fewer classes."
        ) from error


def examples_per_class_subset(labels: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Pick ``k`` samples of every class (k-shot), seeded; returns sorted positions."""
    k = int(k)
    if k < 1:
        raise ConfigError(f"`examples_per_class` must be a positive integer; got {k}.")
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    chosen = []
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        if len(members) < k:
            raise ConfigError(
                f"`examples_per_class`={k} but class {int(cls)} has only {len(members)} "
                "training samples; lower it or enlarge the training split."
            )
        chosen.append(rng.choice(members, size=k, replace=False))
    return np.sort(np.concatenate(chosen))


def fraction_subset(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Keep a stratified, seeded ``fraction`` of the samples; returns sorted positions."""
    fraction = float(fraction)
    if not 0.0 < fraction <= 1.0:
        raise ConfigError(f"`train_subset` must lie in (0, 1]; got {fraction}.")
    positions = np.arange(len(labels))
    if fraction == 1.0:
        return positions
    kept, _ = _split_off(positions, np.asarray(labels), 1.0 - fraction, seed)
    return np.sort(kept)
