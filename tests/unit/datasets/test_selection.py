import numpy as np
import pytest

from nntransfer.datasets.selection import (
    examples_per_class_subset,
    fraction_subset,
    relabel,
    select_classes,
    stratified_split,
)
from nntransfer.errors import ConfigError, NNTransferError

LABELS = np.repeat(np.arange(5), 20)


def test_select_classes_relabels_in_sorted_order_whatever_the_config_order():
    kept, new, chosen = select_classes(LABELS, classes=[4, 1])
    assert chosen == [1, 4]
    assert set(LABELS[kept]) == {1, 4}
    assert np.array_equal(new, (LABELS[kept] == 4).astype(int))


def test_class_range_includes_both_ends():
    _, new, chosen = select_classes(LABELS, class_range=[1, 3])
    assert chosen == [1, 2, 3]
    assert set(new) == {0, 1, 2}


def test_no_filter_keeps_everything():
    kept, new, chosen = select_classes(LABELS)
    assert len(kept) == len(LABELS) and chosen == [0, 1, 2, 3, 4]
    assert np.array_equal(new, LABELS)


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"classes": [1], "class_range": [0, 2]}, "not both"),
        ({"classes": [9]}, "[9]"),
        ({"class_range": [3, 1]}, "lo <= hi"),
        ({"class_range": [7, 9]}, "selects no class"),
    ],
)
def test_bad_class_filters_raise_config_error(kwargs, fragment):
    with pytest.raises(ConfigError) as info:
        select_classes(LABELS, **kwargs)
    assert fragment in str(info.value)
    assert isinstance(info.value, NNTransferError)


def test_relabel_follows_the_given_mapping_even_when_a_class_is_missing():
    kept, new = relabel(np.array([7, 3, 5, 7]), [3, 5, 7, 9])
    assert np.array_equal(kept, [0, 1, 2, 3])
    assert np.array_equal(new, [2, 0, 1, 2])


def test_stratified_split_partitions_with_requested_sizes_and_class_balance():
    train, validation, test = stratified_split(LABELS, [0.2, 0.3], seed=0)
    together = np.concatenate([train, validation, test])
    assert sorted(together) == list(range(len(LABELS)))
    assert (len(validation), len(test)) == (20, 30)
    for part, per_class in ((validation, 4), (test, 6)):
        assert np.bincount(LABELS[part]).tolist() == [per_class] * 5
    assert all(np.all(np.diff(part) > 0) for part in (train, validation, test))


def test_stratified_split_is_seeded():
    first = stratified_split(LABELS, [0.2], seed=3)
    again = stratified_split(LABELS, [0.2], seed=3)
    other = stratified_split(LABELS, [0.2], seed=4)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not np.array_equal(first[1], other[1])


def test_examples_per_class_picks_k_of_each_class_seeded():
    chosen = examples_per_class_subset(LABELS, 3, seed=1)
    assert np.bincount(LABELS[chosen]).tolist() == [3] * 5
    assert np.array_equal(chosen, examples_per_class_subset(LABELS, 3, seed=1))
    assert not np.array_equal(chosen, examples_per_class_subset(LABELS, 3, seed=2))


def test_examples_per_class_larger_than_a_class_names_the_class():
    with pytest.raises(ConfigError, match="class 0 has only 20"):
        examples_per_class_subset(LABELS, 21, seed=0)


def test_fraction_subset_is_stratified_and_one_keeps_all():
    kept = fraction_subset(LABELS, 0.5, seed=0)
    assert np.bincount(LABELS[kept]).tolist() == [10] * 5
    assert np.array_equal(fraction_subset(LABELS, 1.0, seed=0), np.arange(len(LABELS)))
    with pytest.raises(ConfigError, match="train_subset"):
        fraction_subset(LABELS, 0.0, seed=0)
