"""nnfabrik's transfer tutorial (seed 000) on MNIST, as one recipe.

For users who have MNIST on disk: ``root/MNIST/raw`` with the four idx files
(torchvision's layout; nothing is downloaded).  The root is read from the
environment variable ``NNTRANSFER_MNIST_ROOT`` (default ``data``) when the
recipe is loaded; it is part of the dataset config, so it is hashed.

The tutorial's two scenarios, one seed each:

* ``model_state_transfer``: a LeNet-5 trained on MNIST continues on
  augmented MNIST, starting from the trained state (the tutorial's
  ``DatasetTransferRecipe``);
* ``knowledge_distillation``: the same trained LeNet-5, then a data step
  that computes its logits on every image (the tutorial's
  ``TrainerTransferRecipe`` with ``data_transfer=True``), then a smaller
  model, an MLP with 100 hidden units, trained on those logits and the labels
  with the ``distillation`` module (the tutorial's
  ``TrainerDatasetTransferRecipe``).  Note the flags: each step says what it
  hands on, so the data step is the one flagged.

Step 0 is the same experiment in both chains and is trained once.
Run with ``NNTRANSFER_MNIST_ROOT=/path/to/data nntransfer run recipes/mnist_tutorial.py``.
"""

import os

from nntransfer.configs import DatasetConfig, Experiment, ModelConfig, TrainerConfig, TransferExperiment

MNIST = "nntransfer.datasets.vision.mnist_dataset_fn"
LENET = "nntransfer.models.lenet.lenet5_model_fn"
MLP = "nntransfer.models.mlp.mlp_model_fn"
TRAINER = "nntransfer.trainer.standard.standard_trainer"
GENERATE = "nntransfer.trainer.generate.generate_transfer_data"
ROOT = os.environ.get("NNTRANSFER_MNIST_ROOT", "data")
SEEDS = [1]

mnist = DatasetConfig.for_fn(MNIST, root=ROOT, batch_size=64, comment="MNIST")
augmented_mnist = DatasetConfig.for_fn(
    MNIST, root=ROOT, batch_size=64, augmentation={"shift": 2, "rotation": 10}, comment="Augmented MNIST"
)

lenet = ModelConfig.for_fn(LENET, comment="LeNet-5")
small_mlp = ModelConfig.for_fn(MLP, hidden_sizes=[100], comment="MLP 100")

train = TrainerConfig.for_fn(TRAINER, epochs=5, lr=1e-3, comment="5 epochs")
logits = TrainerConfig.for_fn(GENERATE, comment="Transfer MNIST logits")
distill = TrainerConfig.for_fn(
    TRAINER, epochs=5, lr=1e-3, modules={"distillation": {"temperature": 4.0, "alpha": 0.5}},
    comment="Use transferred MNIST logits",
)

trained_on_mnist = Experiment(mnist, lenet, train, seed=SEEDS)

experiments = {
    "model_state_transfer": TransferExperiment([trained_on_mnist, Experiment(augmented_mnist, lenet, train, seed=SEEDS)]),
    "knowledge_distillation": TransferExperiment(
        [
            trained_on_mnist,
            Experiment(mnist, lenet, logits, seed=SEEDS),
            Experiment(mnist, small_mlp, distill, seed=SEEDS),
        ],
        update=[None, {"data_transfer": True}, None],
    ),
}
