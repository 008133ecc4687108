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

Anywhere else a control exception is a mistake, not a request: from
``setup``, ``start``, ``finish`` or ``teardown`` (there is no batch or epoch
to steer), and from an event the list above does not name (``SkipBatch``
from ``post_optimizer`` would come after the batch was applied,
``StopEpoch`` from ``post_epoch`` after the epoch ended).  The loop turns
such an exception into a :class:`~nntransfer.errors.TrainingError` that
names the module, the hook and the exception, instead of letting it escape
``fit`` or be taken for a request it cannot mean.  :data:`ALLOWED` is the
table it enforces.

The evaluation phases (validation in a training epoch, and
``Loop.evaluate``, e.g. the final test evaluation) fire only
``pre_forward`` and ``post_forward``, and the same table holds there:
``SkipBatch`` leaves the batch out of that phase's metrics; ``StopEpoch``
stops reading that phase's loader, and its metrics cover the batches read so
far; ``StopTraining`` does the same and, in the validation of a training
epoch, starts no further epoch (that epoch's ``post_epoch`` still runs).
Outside ``fit`` there is no training to stop, so there ``StopTraining``
only ends the evaluation, like ``StopEpoch``.  ``SkipOptimizerStep`` is
never allowed in an evaluation phase, where nothing steps.
"""

from nntransfer.errors import TrainingError


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


_BATCH = (SkipBatch, StopEpoch, StopTraining)

ALLOWED = {
    "setup": (),
    "start": (),
    "pre_epoch": (StopTraining,),
    "pre_forward": _BATCH,
    "post_forward": _BATCH,
    "post_backward": (SkipBatch, SkipOptimizerStep, StopEpoch, StopTraining),
    "post_optimizer": (StopEpoch, StopTraining),
    "post_epoch": (StopTraining,),
    "finish": (),
    "teardown": (),
}
"""For every hook of a main-loop module, the control exceptions it may raise."""


def misplaced(handler, hook: str, error: LoopControl, phase: str | None = None) -> TrainingError:
    """The error for ``error``, raised by the module of ``handler`` from ``hook`` where :data:`ALLOWED` forbids it."""
    module = getattr(handler, "__self__", handler)
    name = getattr(module, "name", type(module).__name__)
    where = f"{hook} in the {phase} phase" if phase else hook
    allowed = ", ".join(cls.__name__ for cls in ALLOWED[hook]) or "none"
    return TrainingError(
        f"main-loop module {name!r} raised {type(error).__name__} from {where}, where the loop does not "
        f"allow it (allowed there: {allowed}); see nntransfer.trainer.control for what each one may do."
    )
