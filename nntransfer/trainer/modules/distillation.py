"""Knowledge distillation: learn from a teacher's soft predictions as well as the labels.

The teacher's logits reach the student in one of two ways:

* **data transfer** (the usual nntransfer recipe): a previous step stored the
  teacher's logits as ``output["transfer_data"]``, the dataset hands them out
  with every batch, and they arrive in ``state.extras["logits"]``, aligned
  with the samples of the batch whatever the shuffling;
* **a teacher model** given to the module (``teacher=...``), run frozen, in
  eval mode and without gradients on the same (possibly augmented) inputs.

A given teacher model takes precedence over logits in the batch.  The loss is
Hinton et al.'s::

    loss = (1 - alpha) * hard_loss + alpha * T^2 * KL(softmax(t / T) || softmax(s / T))

where ``hard_loss`` is the loop's loss against the labels; the ``T^2`` keeps
the soft term's gradients on the same scale for any temperature.
"""

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from nntransfer.errors import ConfigError, TrainingError
from nntransfer.trainer.batches import iterate_batches, unpack
from nntransfer.trainer.module import MainLoopModule
from nntransfer.trainer.randomness import data_generators
from nntransfer.trainer.signatures import accepts_data_key

PHASES = ("train", "validation", "test")


def distillation_loss(student_logits, teacher_logits, temperature: float) -> torch.Tensor:
    """``T^2 * KL(teacher || student)`` on temperature-softened distributions, batch mean."""
    t = float(temperature)
    log_student = F.log_softmax(student_logits.float() / t, dim=1)
    log_teacher = F.log_softmax(teacher_logits.float() / t, dim=1)
    return F.kl_div(log_student, log_teacher, reduction="batchmean", log_target=True) * (t * t)


def peek_train_batch(loaders):
    """The first training batch, read without moving any random generator.

    Shuffling samplers draw their seed from torch's global generator when an
    iterator is created, so the peek runs inside ``fork_rng``; a loader that
    shuffles with its own generator, and a dataset that augments with its
    own, get their states back afterwards: the run's batch order (and
    augmentation) is the same with and without this module.
    """
    generators = data_generators({"train": loaders})
    saved = {name: generator.get_state() for name, generator in generators.items()}
    try:
        with torch.random.fork_rng(devices=[]):
            for _, batch in iterate_batches(loaders):
                return batch
        return None
    finally:
        for name, generator in generators.items():
            generator.set_state(saved[name])


class KnowledgeDistillation(MainLoopModule):
    """Add a distillation term to the loss (see module doc).

    ``temperature``: softening T > 0.  ``alpha``: weight of the soft term in
    [0, 1] (1: soft targets only).  ``teacher``: optional frozen teacher model;
    without it, teacher logits must come with the batches under
    ``logits_key``.  ``phases``: where the term is added; by default only in
    training, so validation losses stay comparable with plain training.
    """

    name = "distillation"
    order = 200
    added_metrics = ("distillation_loss",)

    def __init__(
        self,
        temperature: float = 4.0,
        alpha: float = 0.5,
        teacher: Optional[nn.Module] = None,
        logits_key: str = "logits",
        phases=("train",),
    ):
        if not isinstance(temperature, (int, float)) or temperature <= 0:
            raise ConfigError(f"distillation: temperature must be a number > 0, got {temperature!r}")
        if not isinstance(alpha, (int, float)) or not 0 <= alpha <= 1:
            raise ConfigError(f"distillation: alpha must be between 0 and 1, got {alpha!r}")
        if teacher is not None and not isinstance(teacher, nn.Module):
            raise ConfigError(
                f"distillation: teacher must be a torch.nn.Module, got {type(teacher).__name__}"
            )
        phases = (phases,) if isinstance(phases, str) else tuple(phases)
        unknown = [p for p in phases if p not in PHASES]
        if unknown:
            raise ConfigError(f"distillation: unknown phases {unknown}; choose from {list(PHASES)}")
        self.temperature = float(temperature)
        self.alpha = float(alpha)
        self.teacher = teacher
        self.logits_key = logits_key
        self.phases = phases
        self._teacher_takes_key = False

    def setup(self, state):
        if self.teacher is not None:
            self.teacher.to(state.device).eval()
            self.teacher.requires_grad_(False)
            self._teacher_takes_key = accepts_data_key(self.teacher)
            return
        self.require(
            "train" in state.loaders,
            "needs a 'train' loader whose batches carry teacher logits, or a teacher model",
        )
        batch = peek_train_batch(state.loaders["train"])
        self.require(batch is not None, "the train loader is empty")
        _, _, extras = unpack(batch)
        self.require(
            self.logits_key in extras,
            f"no teacher logits: the batches carry no extras[{self.logits_key!r}] "
            f"(extras keys: {sorted(extras)}) and no teacher model was given. Transfer the "
            "teacher's logits as data (dataset_config['transfer_data'] from a previous step) "
            "or pass teacher=<model>",
        )

    def _teacher_logits(self, state):
        if self.teacher is not None:
            with torch.no_grad():
                if self._teacher_takes_key and state.data_key is not None:
                    return self.teacher(state.inputs, data_key=state.data_key)
                return self.teacher(state.inputs)
        if self.logits_key not in state.extras:
            raise TrainingError(
                f"distillation: a {state.phase} batch carries no extras[{self.logits_key!r}]; "
                "every batch of the phases in 'phases' needs teacher logits"
            )
        return state.extras[self.logits_key]

    def post_forward(self, state):
        if state.phase not in self.phases:
            return
        student = state.outputs
        teacher = self._teacher_logits(state).to(student.device)
        if teacher.shape != student.shape:
            raise TrainingError(
                f"distillation: teacher logits have shape {tuple(teacher.shape)} but the model "
                f"outputs {tuple(student.shape)}; student and teacher need the same classes"
            )
        soft = distillation_loss(student, teacher, self.temperature)
        state.loss = (1 - self.alpha) * state.loss + self.alpha * soft
        state.accumulate("distillation_loss", soft, student.shape[0])
