"""Base class of main-loop modules.

A main-loop module bundles one feature of training (early stopping, a learning
rate schedule, knowledge distillation, ...) so that the loop itself stays free
of features.  A module overrides the event methods it needs; the loop looks up
once, before training, which methods a module overrides and calls only those,
so an event nobody uses costs nothing per batch.

Modules run sorted by ``order`` (smaller first), ties in the order they were
given.  The same order holds at every event.  Built-in orders:

=====  ===========================  ==============================================
order  module                       why there
=====  ===========================  ==============================================
 20    performance                  puts the model (and each batch) in the memory
                                    format and compiled form the others then see
 50    finetuning                   freezing decides what trains, so it goes first
100    noise_augmentation           changes the inputs before anyone looks at them
150    representation_monitor       records activations of the (noisy) inputs
200    distillation                 adds its term to the loss
210    representation_matching      adds its term to the loss
300    grad_clip                    clips the gradients that the loss produced
400    lr_schedule                  builds its scheduler from the undamped rates
450    warmup                       scales the rates down for the first steps
500    (default for user modules)
600    early_stopping               decides on stopping after the schedule stepped
900    progress                     logs what the modules above recorded
1000   checkpointing                last, so a checkpoint holds every module's
                                    state after the epoch
=====  ===========================  ==============================================

Besides the six events (:class:`~nntransfer.trainer.events.Event`) a module
has four once-per-run hooks: ``setup`` (before the optimizer is built: check
requirements, may set ``state.param_groups``), ``start`` (after the optimizer
and scheduler exist, before the first epoch: e.g. resume from a checkpoint),
``finish`` (after the last epoch, before the final test evaluation: e.g.
restore the best weights) and ``teardown`` (when ``fit`` ends, also when an
exception ends it: release what the module put on the model, such as hooks);
``interrupt`` runs when a signal stops training at a batch boundary (save
what resuming needs).  ``state_dict`` / ``load_state_dict`` carry a
module's state through checkpoints so that a resumed run continues exactly.

A registered module may also run without being asked for: before a run, the
registry (:func:`nntransfer.trainer.modules.default_modules`) asks the class
of every registered module that the run's config does not name for
:meth:`MainLoopModule.default_instance`, and adds what it returns.  The base
class returns None; ``checkpointing`` returns a resume-only instance when the
run's ``cb`` brought a checkpoint store (``state.checkpoint_store``).  This is
how the loop gains a feature from its environment without naming the module
that provides it.
"""

from nntransfer.errors import ModuleRequirementError
from nntransfer.trainer.events import Event


class MainLoopModule:
    """A feature of training that hooks into the main loop's events.

    Subclasses set ``name`` (the key under which their state is checkpointed,
    also the registry name of built-in modules) and ``order``.

    Three more class-level declarations let a trainer config that names the
    module be checked when it is made, before it is hashed or stored,
    without constructing the module (see :mod:`nntransfer.trainer.options`):
    ``added_metrics``, ``metric_options`` and :meth:`check_options`.  The
    option names themselves are checked against the constructor's signature.
    """

    name: str = "module"
    order: int = 500

    added_metrics: tuple[str, ...] = ()
    """Metrics the module adds to each epoch's metrics, named without the split
    (``"grad_norm"`` for ``train.grad_norm``); ``*`` stands for a part its
    options decide (``"repr.*"``: layer and statistic).  ``score_metric`` and
    the ``metric_options`` of other modules may name them as
    ``"<split>.<name>"``; a metric no configured module declares is refused."""

    metric_options: tuple[str, ...] = ()
    """Options whose value names a per-epoch metric (early stopping's
    ``objective``); the config check refuses a metric the run cannot measure."""

    @classmethod
    def check_options(cls, options: dict) -> None:
        """Refuse options that cannot work, with a ConfigError; the base accepts all.

        ``options`` are the constructor's keyword arguments with its defaults
        filled in.  Only cheap checks belong here, the kind that needs no
        model, data or run: enumerated choices (a schedule's ``kind``), the
        direction of an objective.  The config check calls it without
        constructing the module; the constructor of a module that overrides
        it calls it too (or the same helper), so a config and code that
        constructs the module get a bad value reported in the same words.
        """

    @classmethod
    def default_instance(cls, state):
        """The instance a run gets when its config does not name this module, or None.

        Asked once per run, before ``setup``, of registered modules only
        (see the module doc); ``state`` has the model, the loaders and
        ``checkpoint_store``, but no optimizer yet.
        """
        return None

    def setup(self, state):
        """Check what the module needs; raise ModuleRequirementError if missing.

        Called once before the optimizer is built and before the first batch.
        """

    def start(self, state):
        """Called once after the optimizer (and scheduler) exist, before the first epoch."""

    def finish(self, state):
        """Called once after the last epoch, before the final test evaluation."""

    def teardown(self, state):
        """Called once when ``fit`` ends, whether training finished or raised."""

    def interrupt(self, state):
        """Called when a signal stops training (see :mod:`nntransfer.trainer.interrupt`), before ``teardown``.

        Save here what a later run needs to resume: ``state.partial_epoch``
        describes the epoch in progress (None at the end of an epoch).
        ``checkpointing`` writes a checkpoint.
        """

    def pre_epoch(self, state):
        """Before the training batches of an epoch."""

    def pre_forward(self, state):
        """Before the model sees ``state.inputs`` (every phase)."""

    def post_forward(self, state):
        """After ``state.outputs`` and ``state.loss`` exist (every phase)."""

    def post_backward(self, state):
        """After the backward pass of a training batch."""

    def post_optimizer(self, state):
        """After an optimizer step in training."""

    def post_epoch(self, state):
        """After training and validation of an epoch; ``state.metrics`` is complete."""

    def state_dict(self) -> dict:
        """What a checkpoint must hold for this module to resume exactly."""
        return {}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore what :meth:`state_dict` returned."""

    def overrides(self, method_name: str) -> bool:
        """Whether this module's class replaces the base class's no-op ``method_name``."""
        return getattr(type(self), method_name) is not getattr(MainLoopModule, method_name)

    def require(self, condition: bool, message: str) -> None:
        """Raise ModuleRequirementError naming this module when ``condition`` is false."""
        if not condition:
            raise ModuleRequirementError(f"main-loop module {self.name!r}: {message}")

    def __repr__(self):
        return f"{type(self).__name__}(name={self.name!r}, order={self.order})"


EVENT_METHODS = tuple(event.value for event in Event)
