"""Multigrid training on digits: learn at 8x8, continue at 16x16 (seed 002).

A fully convolutional network has no layer whose size depends on the input
resolution, so a model trained on small images can be reused whole on larger
ones.  LeNet-5 with ``global_pool=True`` is such a network: its head sees the
16 channel means whatever the image size.  The chain:

* step 0: train on the 8x8 digits (an 8x8 epoch costs about half a 16x16
  one, but ``benchmarks/multigrid.py``, which times the whole chain against
  training from scratch at 16x16 to the same validation accuracy, finds that
  on digits the chain takes as long);
* step 1: the same model config on digits upsampled to 16x16
  (``image_size=16``); every parameter of step 0 is loaded (the stored load
  report lists no missing or mismatched tensor) and training continues.

``scratch_16`` trains the same network at 16x16 from random weights for the
same number of epochs as step 1, the baseline.  Each for 2 seeds.
Run with ``nntransfer run recipes/digits_multigrid.py``.
"""

from nntransfer.configs import DatasetConfig, Experiment, ModelConfig, TrainerConfig, TransferExperiment

DIGITS = "nntransfer.datasets.digits.digits_dataset_fn"
LENET = "nntransfer.models.lenet.lenet5_model_fn"
TRAINER = "nntransfer.trainer.standard.standard_trainer"
SEEDS = [1, 2]

coarse = DatasetConfig.for_fn(DIGITS, split_seed=0, comment="digits 8x8")
fine = DatasetConfig.for_fn(DIGITS, split_seed=0, image_size=16, comment="digits 16x16")

# No `transfer` option: the whole state of the previous step is loaded.
fully_convolutional = ModelConfig.for_fn(LENET, global_pool=True, comment="LeNet-5, global pooling")

coarse_training = TrainerConfig.for_fn(TRAINER, epochs=10, lr=3e-3, comment="10 epochs")
fine_training = TrainerConfig.for_fn(TRAINER, epochs=3, lr=1e-3, comment="3 epochs")

experiments = {
    "multigrid": TransferExperiment(
        [
            Experiment(coarse, fully_convolutional, coarse_training, seed=SEEDS),
            Experiment(fine, fully_convolutional, fine_training, seed=SEEDS),
        ]
    ),
    "scratch_16": Experiment(fine, fully_convolutional, fine_training, seed=SEEDS),
}
