"""Reading batches: interleaving a loader per task, counting them, splitting a batch into its parts.

The loop, the data-generating trainer and modules that look at the data
(distillation peeks at a batch, progress and warmup count them) all read
batches the same way, so the rules live here, in a module that needs nothing
else of the trainer.
"""

from itertools import repeat

from nntransfer.errors import DataError


def iterate_batches(loaders):
    """Yield ``(data_key, batch)``; a dict of loaders is interleaved round-robin.

    Each loader of a dict is read once per epoch: keys take turns, and a key
    whose loader is exhausted drops out while the others go on.
    """
    if not isinstance(loaders, dict):
        return zip(repeat(None), loaders)
    return _round_robin(loaders)


def _round_robin(loaders):
    iterators = {key: iter(loader) for key, loader in loaders.items()}
    while iterators:
        for key in list(iterators):
            try:
                batch = next(iterators[key])
            except StopIteration:
                del iterators[key]
                continue
            yield key, batch


def count_batches(loaders):
    """Number of batches in one pass, or None when a loader has no length."""
    try:
        if isinstance(loaders, dict):
            return sum(len(loader) for loader in loaders.values())
        return len(loaders)
    except TypeError:
        return None


def unpack(batch):
    """``(inputs, targets)`` or ``(inputs, targets, extras)`` -> the three parts."""
    if isinstance(batch, (tuple, list)):
        if len(batch) == 2:
            return batch[0], batch[1], {}
        if len(batch) == 3 and isinstance(batch[2], dict):
            return batch[0], batch[1], batch[2]
    raise DataError(
        "a batch must be (inputs, targets) or (inputs, targets, extras_dict); "
        f"got {type(batch).__name__}"
        + (f" of length {len(batch)}" if isinstance(batch, (tuple, list)) else "")
        + ". Make the dataset's __getitem__ return such a tuple."
    )
