"""Exceptions a main-loop module raises to steer the loop.

Raising is the whole protocol: the loop catches these and nothing else, so a
module never needs a handle on the loop.  What each one does:

``SkipBatch``
    From ``pre_forward``, ``post_forward`` or ``post_backward``: the rest of the
    current batch is abandoned (no later module at that event, no backward, no
    optimizer step), the gradients gathered since the last optimizer step are
    dropped, and the batch is not counted in the epoch's metrics.  Counted in
    ``state.skipped_batches``.
``SkipOptimizerStep``
    From ``post_backward``: the optimizer does not step for the gradients
    gathered so far (they are zeroed); the batch still counts in the metrics.
    Counted in ``state.skipped_steps``.
``StopEpoch``
    From any batch event: the current batch is abandoned as with ``SkipBatch``
    and the rest of the current phase's loader is not read.  Validation and
    ``post_epoch`` still run for a training epoch cut short this way.
``StopTraining``
    From a batch event: like ``StopEpoch``, and no further epoch starts.  From
    ``post_epoch``: the remaining modules still get their ``post_epoch`` (so a
    checkpoint or a log line of the last epoch is still written), then training
    ends.  From ``pre_epoch``: the epoch does not run and training ends.  In
    every case the modules' ``finish`` and the final test evaluation still run.
"""


class LoopControl(Exception):
    """Base class of the loop's control-flow requests; never an error."""


class SkipBatch(LoopControl):
    """Abandon the current batch: no backward, no step, not counted in metrics."""


class SkipOptimizerStep(LoopControl):
    """Do not apply the gradients gathered so far; zero them and go on."""


class StopEpoch(LoopControl):
    """Stop reading the current phase's loader; validation and post_epoch still run."""


class StopTraining(LoopControl):
    """Start no further epoch; finish and the final test evaluation still run."""
