"""Fixed feature extractor, computed once: loaders over a frozen backbone's features.

When only a new head is trained on top of a frozen network, running the
backbone in every epoch repeats the same computation.  These helpers run it
once per split (batch by batch with
:func:`nntransfer.transfer.features.extract_feature_batches`, in dataset
order, without augmentation, with the source loader's workers) and return
ordinary loaders whose inputs are the feature vectors.  The features go to a
file in the temporary folder (``TMPDIR``) in chunks of :data:`CHUNK_BYTES`
and are read from there one row at a time
(:class:`~nntransfer.datasets.file_rows.FileRows`), so a cache larger than
memory works and memory holds one chunk; the file is removed when its loaders
are gone.  Labels, class attributes and transfer-data
extras of the source datasets carry over, so any model builder of
:mod:`nntransfer.models` (an MLP, or a linear head with ``hidden_sizes=[]``)
can be trained on them.

Two ways to use it:

* in a transfer chain (the database route): a step with
  ``nntransfer.trainer.generate.generate_transfer_data`` and
  ``layers=["features"]`` receives the pretrained state and hands on its
  features as transfer data (``data_transfer=True``); the next step uses
  :func:`transferred_features_dataset_fn` with the same source dataset
  config and trains only a head (e.g. ``mlp_model_fn`` with
  ``hidden_sizes=[]``);
* with weights on disk (the function route):
  :func:`cached_features_dataset_fn` with ``weights_path``.

Both are valid only while the backbone stays frozen and the training data are
not augmented: each sample's features are computed once.  An augmented split
is therefore refused (a :class:`DataError` naming the split), rather than
trained on clean features while its config records augmentation.

The features are those of the backbone in eval mode.  A frozen backbone run in
every epoch (the ``finetuning`` module) holds its BatchNorm layers in eval
mode too, so the two agree, but not its Dropout layers, and a BatchNorm layer
without running statistics normalises with each batch's statistics in either
mode.  Such layers in the part that computes the features are logged as a
warning when the features are computed: the head then trains on eval-mode
features, which differ from what the frozen backbone would give in training.
"""

from __future__ import annotations

import logging
from typing import Mapping

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from nntransfer.datasets.file_rows import FileRows, write_rows
from nntransfer.datasets.loaders import make_loader
from nntransfer.datasets.tensor_dataset import ImageTensorDataset
from nntransfer.errors import DataError, TransferError
from nntransfer.resolve import resolve_fn
from nntransfer.transfer.features import check_rows, extract_feature_batches, get_layer, ordered_loader
from nntransfer.transfer.provenance import receive

log = logging.getLogger(__name__)

CHUNK_BYTES = 64 * 2**20
"""Features are gathered into chunks of about this size and each chunk is written to the cache file."""


def cached_feature_loaders(
    backbone: nn.Module,
    dataloaders: Mapping,
    *,
    layer: str | None = None,
    batch_size: int | None = None,
    seed: int = 0,
) -> dict:
    """Replace every loader's inputs by ``backbone``'s (flattened) output.

    ``layer`` names a submodule whose output is used instead of the model
    output, e.g. ``layer="features"`` for the models of this package.  The
    source datasets must be :class:`ImageTensorDataset` (all datasets of this
    package are), since labels and extras are read from them directly.
    An augmented split is refused, and layers that act differently in
    training are logged (see the module doc).
    """
    for split, loader in dataloaders.items():
        for source in loader.values() if isinstance(loader, Mapping) else [loader]:
            _refuse_augmentation(split, source.dataset)
    _warn_about_training_mode_layers(backbone, layer)
    return {
        split: (
            {key: _feature_loader(backbone, split, l, layer, batch_size, seed) for key, l in loader.items()}
            if isinstance(loader, Mapping)
            else _feature_loader(backbone, split, loader, layer, batch_size, seed)
        )
        for split, loader in dataloaders.items()
    }


def _feature_loader(backbone, split, loader, layer, batch_size, seed) -> DataLoader:
    source = loader.dataset
    if not isinstance(source, ImageTensorDataset):
        raise DataError(
            f"Cached features need the datasets of nntransfer.datasets; the {split!r} loader "
            f"holds a {type(source).__name__}."
        )
    batches = extract_feature_batches(backbone, ordered_loader(loader), [layer] if layer else None)
    rows = write_rows(_in_chunks((batch[layer] for batch in batches), CHUNK_BYTES))
    check_rows(len(rows), len(source), layer)
    return _loader_over(rows, source, split, batch_size or loader.batch_size, seed)


def _in_chunks(batches, chunk_bytes: int):
    """Feature batches, flattened to float32 rows, gathered into chunks of about ``chunk_bytes``.

    One buffer is filled and handed on when full, so memory holds one chunk
    and the file gets a few large writes instead of one per batch.
    """
    buffer, filled = None, 0
    for batch in batches:
        rows = batch.reshape(len(batch), -1).astype(np.float32, copy=False)
        if buffer is None:
            buffer = np.empty((max(1, chunk_bytes // max(rows.shape[1] * 4, 1)), rows.shape[1]), np.float32)
        start = 0
        while start < len(rows):
            take = min(len(rows) - start, len(buffer) - filled)
            buffer[filled : filled + take] = rows[start : start + take]
            filled, start = filled + take, start + take
            if filled == len(buffer):
                yield buffer
                filled = 0
    if filled:
        yield buffer[:filled]


def _refuse_augmentation(split, dataset) -> None:
    augmentation = getattr(dataset, "augmentation", None)
    if augmentation is not None:
        raise DataError(
            f"The {split!r} split is augmented ({augmentation}), but cached features are computed once, "
            "from the clean images, so training would never see the augmentation that its config records. "
            "Either remove `augmentation` from the dataset config, or train the whole model with a frozen "
            "backbone (the `finetuning` module with head=...), which runs the backbone on augmented images "
            "in every epoch."
        )


def _warn_about_training_mode_layers(backbone: nn.Module, layer: str | None) -> None:
    """Log the layers by which eval-mode features differ from a frozen backbone's in training."""
    part = backbone if layer is None else get_layer(backbone, layer)
    found = []
    for name, module in part.named_modules():
        name = ".".join(filter(None, (layer, name))) or type(backbone).__name__
        if isinstance(module, nn.modules.dropout._DropoutNd) and module.p > 0:
            found.append(f"{name} ({type(module).__name__}, p={module.p:g})")
        elif isinstance(module, nn.modules.batchnorm._BatchNorm) and not module.track_running_stats:
            found.append(f"{name} ({type(module).__name__} without running statistics)")
    if found:
        log.warning(
            "Cached features are computed with the backbone in eval mode, but these layers of it act "
            "differently in training: %s. A frozen backbone run in every epoch would apply them, so the "
            "head trained on these features is not the one that run would train.",
            ", ".join(found),
        )


def _loader_over(features, source: ImageTensorDataset, split, batch_size, seed) -> DataLoader:
    """A loader whose inputs are ``features`` (flattened per sample) and whose labels are ``source``'s."""
    dataset = ImageTensorDataset(
        features if isinstance(features, FileRows) else features.reshape(len(source), -1).float(),
        source.labels,
        classes=source.classes,
        return_index=source.return_index,
    )
    dataset.extras = dict(source.extras)
    return make_loader(dataset, split, batch_size, seed)


def cached_features_dataset_fn(
    seed: int,
    *,
    dataset_fn: str = "nntransfer.datasets.digits.digits_dataset_fn",
    dataset_config: dict | None = None,
    model_fn: str = "nntransfer.models.mlp.mlp_model_fn",
    model_config: dict | None = None,
    weights_path: str | None = None,
    layer: str = "features",
    batch_size: int | None = None,
    transfer_data: dict | None = None,
) -> dict:
    """nnfabrik dataset function: features of a frozen, pretrained network.

    Builds the source loaders (``dataset_fn`` with ``dataset_config``), the
    network (``model_fn`` with ``model_config``), loads its full state_dict
    from the local file ``weights_path``, and returns loaders over the output
    of ``layer``.  ``transfer_data`` is handed to the source dataset, so its
    rows stay aligned with the samples.
    """

    source_config = dict(dataset_config or {})
    if transfer_data is not None:
        source_config["transfer_data"] = transfer_data
    loaders = resolve_fn(dataset_fn, "dataset_fn")(seed, **source_config)
    network = resolve_fn(model_fn, "model_fn")(loaders, seed, **(model_config or {}))
    if weights_path is not None:
        state = torch.load(weights_path, map_location="cpu", weights_only=True)
        try:
            network.load_state_dict(state)
        except RuntimeError as error:
            raise TransferError(
                f"The weights in {weights_path!r} do not fit the network built by {model_fn!r} "
                f"with {model_config!r}: {error}"
            ) from error
    return cached_feature_loaders(network, loaders, layer=layer, batch_size=batch_size, seed=seed)


def transferred_features_dataset_fn(
    seed: int,
    *,
    dataset_fn: str = "nntransfer.datasets.digits.digits_dataset_fn",
    dataset_config: dict | None = None,
    feature: str = "features.features",
    batch_size: int | None = None,
    transfer_data: dict | None = None,
) -> dict:
    """nnfabrik dataset function: features handed on by the previous transfer step.

    The previous step ran ``generate_transfer_data`` with ``layers=["features"]``
    on the source dataset (``dataset_fn`` with ``dataset_config``; the same
    config and seed, so rows line up with samples), and its output arrives here
    as ``transfer_data``.  Inputs become the array named ``feature`` of each
    split, labels and class attributes come from the source dataset.
    """

    if not isinstance(transfer_data, Mapping) or not transfer_data:
        raise DataError(
            "transferred_features_dataset_fn needs transfer_data: use it in the step after one that "
            "ran nntransfer.trainer.generate.generate_transfer_data with layers=['features'] and "
            "data_transfer=True, or use cached_features_dataset_fn with weights_path instead."
        )
    loaders = resolve_fn(dataset_fn, "dataset_fn")(seed, **(dataset_config or {}))
    result = {}
    for split, loader in loaders.items():
        if isinstance(loader, Mapping) or not isinstance(loader.dataset, ImageTensorDataset):
            raise DataError(
                f"transferred_features_dataset_fn needs one dataset of nntransfer.datasets per split; "
                f"{dataset_fn!r} gives {type(loader).__name__} for {split!r}."
            )
        _refuse_augmentation(split, loader.dataset)
        arrays = transfer_data.get(split)
        if arrays is None:
            raise DataError(
                f"transfer_data has no split {split!r} (it has {sorted(transfer_data)}); generate features "
                "for every split (generate_transfer_data's default splits)."
            )
        arrays = receive(split, arrays, loader.dataset.labels)
        if feature not in arrays:
            raise DataError(
                f"transfer_data[{split!r}] has no array {feature!r}; it has {sorted(arrays)}. Set `feature` "
                "to one of them, or add the layer to generate_transfer_data's `layers` "
                "(layer 'features' is stored as 'features.features')."
            )
        features = torch.as_tensor(np.asarray(arrays[feature]))
        if len(features) != len(loader.dataset):
            raise TransferError(
                f"transfer_data[{split!r}][{feature!r}] has {len(features)} rows, but the {split!r} split of "
                f"{dataset_fn!r} has {len(loader.dataset)} samples. The features must come from a step with "
                "the same dataset config and seed as `dataset_config` here."
            )
        result[split] = _loader_over(features, loader.dataset, split, batch_size or loader.batch_size, seed)
    return result
