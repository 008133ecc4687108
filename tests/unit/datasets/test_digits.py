import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from nntransfer.datasets.digits import digits_dataset_fn
from nntransfer.errors import ConfigError, TransferError

N_DIGITS = 1797


def _all(loader):
    """Every input and target of a loader, concatenated in loader order."""
    xs, ys = zip(*[(batch[0], batch[1]) for batch in loader])
    return torch.cat(xs), torch.cat(ys)


def _dataset_tensors(dataset):
    items = [dataset[i] for i in range(len(dataset))]
    return torch.stack([item[0] for item in items]), torch.stack([item[1] for item in items])


def test_returns_three_loaders_covering_all_samples_with_requested_fractions():
    loaders = digits_dataset_fn(0)
    assert set(loaders) == {"train", "validation", "test"}
    sizes = {split: len(loader.dataset) for split, loader in loaders.items()}
    assert sum(sizes.values()) == N_DIGITS
    assert sizes["validation"] == pytest.approx(0.2 * N_DIGITS, abs=2)
    assert sizes["test"] == pytest.approx(0.2 * N_DIGITS, abs=2)
    x, y = next(iter(loaders["train"]))
    assert x.shape == (64, 1, 8, 8) and x.dtype == torch.float32 and y.dtype == torch.int64
    dataset = loaders["train"].dataset
    assert dataset.num_classes == 10 and dataset.input_shape == (1, 8, 8)


def test_same_seed_same_data_and_order_other_seed_other_split():
    first, again, other = digits_dataset_fn(5), digits_dataset_fn(5), digits_dataset_fn(6)
    for split in ("train", "test"):
        assert torch.equal(_all(first[split])[0], _all(again[split])[0])
    assert not torch.equal(_all(first["test"])[0], _all(other["test"])[0])


def test_split_seed_keeps_the_split_while_seed_changes_the_shuffle():
    a = digits_dataset_fn(1, split_seed=0, normalize=False)
    b = digits_dataset_fn(2, split_seed=0, normalize=False)
    assert torch.equal(_dataset_tensors(a["test"].dataset)[0], _dataset_tensors(b["test"].dataset)[0])
    assert torch.equal(_dataset_tensors(a["train"].dataset)[0], _dataset_tensors(b["train"].dataset)[0])
    assert not torch.equal(_all(a["train"])[1], _all(b["train"])[1])


def test_train_loader_shuffles_evaluation_loaders_keep_dataset_order():
    loaders = digits_dataset_fn(0)
    for split, shuffled in (("train", True), ("validation", False), ("test", False)):
        in_dataset_order = torch.equal(_all(loaders[split])[1], loaders[split].dataset.labels)
        assert in_dataset_order is not shuffled


def test_flatten_and_image_size():
    assert next(iter(digits_dataset_fn(0, flatten=True)["train"]))[0].shape[1:] == (64,)
    loaders = digits_dataset_fn(0, image_size=16, flatten=True)
    assert next(iter(loaders["test"]))[0].shape[1:] == (256,)
    loaders = digits_dataset_fn(0, image_size=32)
    assert next(iter(loaders["validation"]))[0].shape[1:] == (1, 32, 32)
    assert loaders["train"].dataset.input_shape == (1, 32, 32)


def test_class_filter_relabels_and_sets_num_classes():
    loaders = digits_dataset_fn(0, classes=[8, 3, 5])
    for loader in loaders.values():
        assert loader.dataset.num_classes == 3 and loader.dataset.classes == [3, 5, 8]
        assert set(_all(loader)[1].tolist()) == {0, 1, 2}
    total = sum(len(loader.dataset) for loader in loaders.values())
    assert total == np.isin(load_digits().target, [3, 5, 8]).sum()
    ranged = digits_dataset_fn(0, class_range=[0, 4])
    assert ranged["train"].dataset.classes == [0, 1, 2, 3, 4]


def test_examples_per_class_and_train_subset_only_shrink_the_training_split():
    full = digits_dataset_fn(0)
    shot = digits_dataset_fn(0, examples_per_class=3)
    assert np.bincount(shot["train"].dataset.labels.numpy()).tolist() == [3] * 10
    assert len(shot["test"].dataset) == len(full["test"].dataset)
    half = digits_dataset_fn(0, train_subset=0.5)
    assert len(half["train"].dataset) == pytest.approx(len(full["train"].dataset) / 2, abs=5)
    assert len(half["validation"].dataset) == len(full["validation"].dataset)


def test_normalisation_uses_training_statistics():
    loaders = digits_dataset_fn(0)
    x, _ = _dataset_tensors(loaders["train"].dataset)
    assert x.mean().item() == pytest.approx(0.0, abs=1e-5)
    assert x.std().item() == pytest.approx(1.0, abs=1e-3)
    raw, _ = _dataset_tensors(digits_dataset_fn(0, normalize=False)["train"].dataset)
    assert raw.min().item() == 0.0 and raw.max().item() == 1.0


def test_augmentation_changes_training_items_reproducibly_and_leaves_evaluation_alone():
    options = {"shift": 1, "rotation": 15, "noise": 0.05}
    plain = digits_dataset_fn(0)
    first = digits_dataset_fn(0, augmentation=options)
    again = digits_dataset_fn(0, augmentation=options)
    x_plain, y_plain = _all(plain["train"])
    x_first, y_first = _all(first["train"])
    assert torch.equal(y_plain, y_first)
    assert not torch.allclose(x_plain, x_first)
    assert torch.equal(x_first, _all(again["train"])[0])
    assert torch.equal(_all(plain["test"])[0], _all(first["test"])[0])


def test_shift_only_augmentation_moves_pixels_without_changing_them():
    loaders = digits_dataset_fn(0, augmentation={"shift": 2}, normalize=False)
    dataset = loaders["train"].dataset
    original = dataset.images[0] * dataset.scale
    moved = dataset[0][0]
    assert moved.sum() <= original.sum() + 1e-5
    assert set(torch.unique(moved).tolist()) <= set(torch.unique(original).tolist()) | {0.0}


def test_unknown_augmentation_key_is_rejected():
    with pytest.raises(ConfigError, match="known keys"):
        digits_dataset_fn(0, augmentation={"flip": True})


def test_transfer_data_rows_follow_dataset_index_through_shuffling():
    lengths = {split: len(loader.dataset) for split, loader in digits_dataset_fn(0).items()}
    transfer = {
        split: {"logits": np.arange(n * 2, dtype=np.float64).reshape(n, 2)}
        for split, n in lengths.items()
    }
    loaders = digits_dataset_fn(0, transfer_data=transfer)
    for split, loader in loaders.items():
        x, y, extras = next(iter(loader))
        assert extras["logits"].dtype == torch.float32
        assert torch.equal(extras["logits"][:, 0], extras["index"].float() * 2)
        assert torch.equal(y, loader.dataset.labels[extras["index"]])


def test_transfer_data_length_mismatch_names_split_and_both_lengths():
    n_validation = len(digits_dataset_fn(0)["validation"].dataset)
    with pytest.raises(TransferError) as info:
        digits_dataset_fn(0, transfer_data={"validation": {"logits": np.zeros((7, 10))}})
    message = str(info.value)
    assert "'validation'" in message and "7 rows" in message and f"{n_validation} samples" in message


def test_transfer_data_with_an_unknown_split_or_reserved_name_is_rejected():
    with pytest.raises(TransferError, match="splits"):
        digits_dataset_fn(0, transfer_data={"val": {"logits": np.zeros(3)}})
    n_train = len(digits_dataset_fn(0)["train"].dataset)
    with pytest.raises(TransferError, match="reserved"):
        digits_dataset_fn(0, transfer_data={"train": {"index": np.zeros(n_train)}})


def test_return_index_adds_positions_without_transfer_data():
    loader = digits_dataset_fn(0, return_index=True)["test"]
    _, _, extras = next(iter(loader))
    assert extras["index"].tolist() == list(range(64))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"validation_fraction": 0.0},
        {"test_fraction": 1.2},
        {"validation_fraction": 0.5, "test_fraction": 0.5},
        {"batch_size": 0},
        {"image_size": 0},
    ],
)
def test_bad_options_raise_config_error(kwargs):
    with pytest.raises(ConfigError):
        digits_dataset_fn(0, **kwargs)


def test_augmentation_in_worker_processes_is_reproducible():
    options = {"augmentation": {"shift": 1, "noise": 0.1}, "num_workers": 2, "batch_size": 256}
    first = _all(digits_dataset_fn(0, **options)["train"])[0]
    again = _all(digits_dataset_fn(0, **options)["train"])[0]
    assert torch.equal(first, again)


def test_each_worker_draws_its_own_augmentation_stream():
    loader = digits_dataset_fn(
        0, augmentation={"noise": 0.1}, normalize=False, num_workers=2, batch_size=256, return_index=True
    )["train"]
    clean = loader.dataset.without_augmentation()
    noises = []
    for x, _, extras in list(loader)[:2]:  # batch 0 comes from worker 0, batch 1 from worker 1
        noises.append(x[0] - clean[int(extras["index"][0])][0])
    assert not torch.allclose(noises[0], noises[1])
