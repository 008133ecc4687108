"""A trainer function that does not train: it produces transfer data.

A data-transfer step (e.g. knowledge distillation) needs the previous model's
logits, and maybe layer features, for every sample of every split.  Rows must
follow the *dataset* order, whatever sampler the training loader uses:
nnfabrik's example took logits from a shuffled loader and silently paired
them with the wrong samples.  So each split's dataset is read in index order
by a non-shuffled loader with the same collate_fn.  Each split's data also
records the split and a fingerprint of its targets in dataset order (see
:mod:`nntransfer.transfer.provenance`), so that a receiving dataset refuses
rows that belong to other samples.

Inputs are read one batch at a time (through the loader's workers, for data
that streams from disk) and each output is written into one array allocated
for the whole split, so 10^6 samples need memory for their outputs only.
"""

import numpy as np
import torch

from nntransfer.errors import TransferError
from nntransfer.trainer.batches import unpack
from nntransfer.trainer.devices import resolve_device, to_device
from nntransfer.trainer.randomness import seed_everything
from nntransfer.transfer.features import FeatureCapture, ordered_loader
from nntransfer.transfer.model_outputs import split_output
from nntransfer.transfer.provenance import record


def generate_transfer_data(
    model: torch.nn.Module,
    dataloaders: dict,
    seed: int,
    uid=None,
    cb=None,
    *,
    splits: tuple = ("train", "validation", "test"),
    layers: tuple = (),
    batch_size: int | None = None,
    device: str = "auto",
    score_split: str = "validation",
):
    """Return ``(score, output, model_state)`` with ``output["transfer_data"]``.

    ``output["transfer_data"] = {split: {"logits": (N, ...) array,
    "features.<layer>": array for each of ``layers``}}``, row ``i`` from
    ``dataset[i]``, plus the record of what they were computed on
    (:mod:`nntransfer.transfer.provenance`).  ``score`` is the accuracy on ``score_split`` when the
    targets are class labels (else NaN); ``output["accuracy"]`` has it per split.
    Splits the dataloaders lack are skipped; naming none that exists is an error.
    """
    present = [split for split in splits if split in dataloaders]
    if not present:
        raise TransferError(
            f"none of the splits {list(splits)} is in the dataloaders {sorted(dataloaders)}; change splits."
        )
    seed_everything(seed)
    device = resolve_device(device)
    model = model.to(device)
    transfer_data, accuracy = {}, {}
    for split in present:
        loader = dataloaders[split]
        if isinstance(loader, dict):
            raise TransferError(
                f"split {split!r} has one loader per data key ({sorted(loader)}); transfer data is "
                "aligned with one dataset per split, so generate it for each data key separately."
            )
        transfer_data[split], accuracy[split] = _run_split(model, split, loader, list(layers), batch_size, device)
    score = accuracy.get(score_split)
    output = {"transfer_data": transfer_data, "accuracy": accuracy}
    model_state = {name: value.detach().cpu().clone() for name, value in model.state_dict().items()}
    return (float("nan") if score is None else score), output, model_state


def _run_split(model, split, loader, layers, batch_size, device):
    ordered = ordered_loader(loader, batch_size)
    expected = len(ordered.dataset)
    sinks = {name: _Rows(name, expected) for name in ["logits", *(f"features.{layer}" for layer in layers)]}
    targets_seen = _Rows("targets", expected)
    correct, labelled = 0, 0
    was_training = model.training
    capture = FeatureCapture(model, layers, detach=True) if layers else None
    try:
        model.eval()
        with torch.no_grad():
            for batch in ordered:
                inputs, targets, _ = unpack(batch)
                if targets_seen is not None and isinstance(targets, torch.Tensor):
                    targets_seen.add(targets)
                else:
                    targets_seen = None
                inputs = to_device(inputs, device)
                if capture is not None:
                    capture.clear()
                output, _ = split_output(model(inputs))
                sinks["logits"].add(_rows(output, "the model output"))
                for name in layers:
                    sinks[f"features.{name}"].add(_rows(capture[name], f"the output of layer {name!r}"))
                if (
                    isinstance(targets, torch.Tensor)
                    and output.dim() == 2
                    and targets.dim() == 1
                    and not targets.is_floating_point()
                ):
                    correct += (output.argmax(1).cpu() == targets).sum().item()
                    labelled += len(targets)
    finally:
        if capture is not None:
            capture.remove()
        model.train(was_training)
    data = {name: sink.array() for name, sink in sinks.items()}
    if targets_seen is not None and expected:
        data.update(record(split, targets_seen.array()))
    return data, (correct / labelled if labelled else None)


class _Rows:
    """One output's rows for a whole split, written batch by batch into one array.

    The array is allocated once the first batch shows the row shape, so a
    split of 10^6 samples needs its outputs' memory and one batch, never a
    list of batches plus their concatenation.
    """

    def __init__(self, name: str, expected: int):
        self.name, self.expected = name, expected
        self.values, self.filled = None, 0

    def add(self, rows: torch.Tensor) -> None:
        rows = rows.numpy()
        if self.values is None:
            self.values = np.empty((self.expected, *rows.shape[1:]), dtype=rows.dtype)
        if self.filled + len(rows) > self.expected or rows.shape[1:] != self.values.shape[1:]:
            raise TransferError(
                f"{self.name}: a batch of shape {tuple(rows.shape)} does not fit rows {self.values.shape[1:]} of "
                f"a dataset of {self.expected} samples ({self.filled} filled); the model must return one row "
                "of the same shape per input sample."
            )
        self.values[self.filled : self.filled + len(rows)] = rows
        self.filled += len(rows)

    def array(self) -> np.ndarray:
        if self.filled != self.expected:
            raise TransferError(
                f"{self.name} has {self.filled} rows but the dataset has {self.expected} samples; "
                "the model must return one row per input sample."
            )
        return self.values if self.values is not None else np.empty((0,))


def _rows(value, what: str) -> torch.Tensor:
    """A batch's values as a float CPU tensor; only a tensor can become rows of an array."""
    if not isinstance(value, torch.Tensor):
        raise TransferError(
            f"{what} is a {type(value).__name__}, not a tensor, so it cannot be stored as transfer data; "
            "choose layers whose output is a tensor."
        )
    return value.detach().float().cpu()
