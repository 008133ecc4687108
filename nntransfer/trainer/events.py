"""The six main-loop events, in loop order.

This enum is the single source of truth for when a main-loop module runs.  The
loop in :mod:`nntransfer.trainer.loop` reads, in pseudocode::

    for module in modules: module.setup(state)        # before the optimizer exists
    build optimizer from state.param_groups (or all trainable parameters)
    for module in modules: module.start(state)        # optimizer exists; resume here
    while state.epoch < state.max_epochs:
        state.epoch += 1
        PRE_EPOCH                                     # freeze/unfreeze, timers, ...
        state.phase = "train"
        for state.data_key, batch in train batches (tasks interleaved):
            state.inputs, state.targets, state.extras = batch
            PRE_FORWARD                               # e.g. add noise to inputs
            state.outputs = model(state.inputs)
            state.loss = loss_fn(state.outputs, state.targets)
            POST_FORWARD                              # e.g. add a distillation loss
            (state.loss / accumulation_steps).backward()
            POST_BACKWARD                             # e.g. clip gradients
            if state.is_step:                         # every accumulation_steps batches
                optimizer.step(); optimizer.zero_grad()
                POST_OPTIMIZER                        # e.g. per-step LR warmup
        if validation is due this epoch:
            state.phase = "validation"
            for state.data_key, batch in validation batches:
                PRE_FORWARD
                state.outputs = model(state.inputs); state.loss = loss_fn(...)
                POST_FORWARD
        state.history += state.metrics
        POST_EPOCH                                    # early stopping, checkpoints, logs
    for module in modules: module.finish(state)       # e.g. restore the best model
    for module in modules: module.teardown(state)     # also when an exception ended fit: remove hooks
    final evaluation on the test loaders (PRE_FORWARD / POST_FORWARD, phase "test")

``PRE_FORWARD`` and ``POST_FORWARD`` fire in every phase (``state.phase`` says
which), ``POST_BACKWARD`` and ``POST_OPTIMIZER`` only in training, and
``PRE_EPOCH`` / ``POST_EPOCH`` once per epoch; ``POST_EPOCH`` comes after
validation so that early stopping sees the validation metrics of the epoch.
How a module steers the loop (skip a batch, stop the epoch, ...) is described in
:mod:`nntransfer.trainer.control`.
"""

from enum import Enum


class Event(str, Enum):
    """A point in the main loop at which main-loop modules run."""

    PRE_EPOCH = "pre_epoch"
    PRE_FORWARD = "pre_forward"
    POST_FORWARD = "post_forward"
    POST_BACKWARD = "post_backward"
    POST_OPTIMIZER = "post_optimizer"
    POST_EPOCH = "post_epoch"
