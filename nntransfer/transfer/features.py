"""Capture intermediate representations and extract features aligned with a dataset.

Two uses:

* During training, modules such as representation matching and monitoring
  need the output of a named layer for the current batch.
  :class:`FeatureCapture` registers forward hooks and keeps the latest output
  of each layer, with the autograd graph unless ``detach=True``.
* For transfer by data (a cached-features dataset, distillation logits),
  :func:`extract_features` runs a model over a loader's *dataset* in index
  order, so row ``i`` of the result belongs to sample ``i`` even when the
  training loader shuffles.
"""

from typing import Optional, Sequence, Union

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, IterableDataset

from nntransfer.errors import TransferError
from nntransfer.transfer.model_outputs import split_output


class LayerNotFoundError(TransferError, KeyError):
    """A layer name does not name a submodule of the model."""

    def __str__(self) -> str:  # KeyError would print the repr of the message
        return str(self.args[0])


def get_layer(model: nn.Module, name: str) -> nn.Module:
    """The submodule called ``name`` (as in ``model.named_modules()``)."""
    modules = dict(model.named_modules())
    if name not in modules:
        available = [n for n in modules if n]
        shown = ", ".join(available[:30]) + (" ..." if len(available) > 30 else "")
        raise LayerNotFoundError(
            f"layer {name!r} is not a submodule of {type(model).__name__}; available layers: {shown}"
        )
    return modules[name]


class FeatureCapture:
    """Keep the latest output of named layers, via forward hooks.

    Use as a context manager (hooks are removed on exit)::

        with FeatureCapture(model, ["features.3", "classifier"]) as captured:
            model(x)
            h = captured["features.3"]

    ``outputs`` maps each layer name to (a copy of) the output of its most recent call;
    :meth:`clear` forgets them (so a layer that did not run is not reported
    with a stale value).
    """

    def __init__(self, model: nn.Module, layers: Union[str, Sequence[str]], *, detach: bool = False):
        self.layers = [layers] if isinstance(layers, str) else list(layers)
        if not self.layers:
            raise TransferError("FeatureCapture needs at least one layer name")
        self.detach = detach
        self.outputs = {}
        self._handles = []
        modules = [get_layer(model, name) for name in self.layers]
        for name, module in zip(self.layers, modules):
            self._handles.append(module.register_forward_hook(self._recorder(name)))

    def _recorder(self, name: str):
        def hook(module, args, output):
            if isinstance(output, torch.Tensor):
                # A copy: a later in-place op (ReLU(inplace=True) after BatchNorm, as in
                # ResNets) would otherwise overwrite what was captured with its own result.
                output = output.detach().clone() if self.detach else output.clone()
            self.outputs[name] = output

        return hook

    def __getitem__(self, name: str):
        if name not in self.outputs:
            raise TransferError(
                f"no output captured for layer {name!r}: run a forward pass first, and check that "
                f"the layer is used in forward (captured: {sorted(self.outputs)})"
            )
        return self.outputs[name]

    def clear(self) -> None:
        self.outputs.clear()

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def __enter__(self) -> "FeatureCapture":
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


def _batch_inputs(batch):
    """The inputs of a batch in the shared convention ``(inputs, targets[, extras])``."""
    if isinstance(batch, torch.Tensor):
        return batch
    if isinstance(batch, (tuple, list)) and batch:
        return batch[0]
    raise TransferError(
        f"cannot find the inputs in a batch of type {type(batch).__name__}; batches must be "
        "(inputs, targets) or (inputs, targets, extras)"
    )


def ordered_loader(loader: Union[DataLoader, Dataset], batch_size: Optional[int] = None) -> DataLoader:
    """A non-shuffled loader over ``loader.dataset`` with the same collate_fn.

    Extraction must follow dataset order whatever sampler the training loader
    uses; anything that cannot be indexed cannot be aligned and is refused.
    Per-sample outputs must not depend on random perturbations either, so a
    dataset that offers ``without_augmentation()`` (nntransfer's datasets do)
    is read through that view.
    """
    dataset = loader.dataset if isinstance(loader, DataLoader) else loader
    if hasattr(dataset, "without_augmentation"):
        dataset = dataset.without_augmentation()
    if isinstance(dataset, IterableDataset) or not hasattr(dataset, "__len__"):
        raise TransferError(
            "features can only be aligned with a map-style dataset (with __len__ and __getitem__); "
            f"got {type(dataset).__name__}"
        )
    if isinstance(loader, DataLoader):
        return DataLoader(
            dataset,
            batch_size=batch_size or loader.batch_size or 256,
            shuffle=False,
            collate_fn=loader.collate_fn,
            num_workers=loader.num_workers,
            pin_memory=loader.pin_memory,
        )
    return DataLoader(dataset, batch_size=batch_size or 256, shuffle=False)


def _to_numpy(value, what: str) -> np.ndarray:
    if not isinstance(value, torch.Tensor):
        raise TransferError(
            f"{what} is a {type(value).__name__}, not a tensor; pass layer=<name of a layer "
            "that returns a tensor>"
        )
    value = value.detach().cpu()
    return (value.float() if value.is_floating_point() else value).numpy()


def extract_features(
    model: nn.Module,
    loader: Union[DataLoader, Dataset],
    layer: Union[None, str, Sequence[str]] = None,
    *,
    batch_size: Optional[int] = None,
    device: Optional[Union[str, torch.device]] = None,
    data_key=None,
) -> Union[np.ndarray, dict]:
    """Run ``model`` over the loader's dataset in index order; return numpy arrays.

    ``layer=None`` gives the model output, a layer name that layer's output,
    and a list of names a dict ``{name: array}``.  Row ``i`` belongs to
    ``dataset[i]``.  A model that returns ``(extras_dict, output)`` gives its
    output; ``data_key`` is passed to a multi-task model's forward.  The model runs in eval mode under ``no_grad``; its
    train/eval flags are restored afterwards.
    """
    names = [layer] if isinstance(layer, str) else (list(layer) if layer is not None else [])
    if layer is not None and not names:
        raise TransferError("extract_features: layer is an empty list; pass None, a name or names")
    ordered = ordered_loader(loader, batch_size)
    chunks = {name: [] for name in (names or [None])}
    for batch in extract_feature_batches(model, ordered, names or None, device=device, data_key=data_key):
        for name, array in batch.items():
            chunks[name].append(array)
    expected = len(ordered.dataset)
    arrays = {}
    for name, parts in chunks.items():
        array = np.concatenate(parts) if parts else np.empty((0,))
        check_rows(len(array), expected, name)
        arrays[name] = array
    if isinstance(layer, str) or layer is None:
        return arrays[layer]
    return arrays


def check_rows(rows: int, expected: int, name: Optional[str]) -> None:
    """Refuse features whose row count is not the dataset's: they could not be aligned."""
    if rows != expected:
        raise TransferError(
            f"extracted {rows} rows for {name or 'the model output'} but the dataset has "
            f"{expected} samples; the model must return one row per input sample"
        )


def extract_feature_batches(
    model: nn.Module,
    ordered: DataLoader,
    names: Optional[Sequence[str]] = None,
    *,
    device: Optional[Union[str, torch.device]] = None,
    data_key=None,
):
    """Yield ``{name: array}`` per batch of the non-shuffled loader ``ordered``.

    The name is ``None`` for the model output when ``names`` is empty.  The
    batch-by-batch form of :func:`extract_features`, for callers that write
    the rows away as they come (a feature cache larger than memory).  Eval
    mode and ``no_grad`` hold between batches; train/eval flags are restored
    when the generator ends or is closed.
    """
    names = list(names or [])
    if device is None:
        first = next(model.parameters(), None)
        device = first.device if first is not None else torch.device("cpu")
    modes = {module: module.training for module in model.modules()}
    capture = FeatureCapture(model, names, detach=True) if names else None
    try:
        model.eval()
        for batch in ordered:
            inputs = _batch_inputs(batch)
            if isinstance(inputs, torch.Tensor):
                inputs = inputs.to(device)
            if capture is not None:
                capture.clear()
            with torch.no_grad():
                output = model(inputs) if data_key is None else model(inputs, data_key=data_key)
            output = split_output(output)[0]
            if capture is None:
                yield {None: _to_numpy(output, "the model output")}
            else:
                yield {name: _to_numpy(capture[name], f"the output of {name!r}") for name in names}
    finally:
        if capture is not None:
            capture.remove()
        for module, mode in modes.items():
            module.training = mode
