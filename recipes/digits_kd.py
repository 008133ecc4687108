"""Knowledge distillation on digits: teacher -> logits -> smaller student (seed 000's chain).

The student sees only 5 % of the training images (about 54).  The teacher
saw all of them; what it knows reaches the student as soft targets:

* step 0: a LeNet-5 teacher trains on all digits;
* step 1: a data step loads the teacher and computes its logits for every
  sample of the small-subset dataset (``generate_transfer_data``); it hands
  on these logits (``data_transfer=True``), not its state;
* step 2: an MLP with 16 hidden units trains on the subset, its batches
  carrying the teacher's logits, with the ``distillation`` module (T = 4,
  90 % of the loss from the soft targets).

``student_alone`` is the baseline: the same student, subset and schedule,
labels only.  Each for 3 seeds.  Run with ``nntransfer run recipes/digits_kd.py``.
"""

from nntransfer.configs import DatasetConfig, Experiment, ModelConfig, TrainerConfig, TransferExperiment

DIGITS = "nntransfer.datasets.digits.digits_dataset_fn"
LENET = "nntransfer.models.lenet.lenet5_model_fn"
MLP = "nntransfer.models.mlp.mlp_model_fn"
TRAINER = "nntransfer.trainer.standard.standard_trainer"
GENERATE = "nntransfer.trainer.generate.generate_transfer_data"
SEEDS = [1, 2, 3]

# split_seed fixes the split, so teacher and students share one test set.
all_digits = DatasetConfig.for_fn(DIGITS, split_seed=0, comment="digits")
few_digits = DatasetConfig.for_fn(DIGITS, split_seed=0, train_subset=0.05, batch_size=32, comment="digits, 5% of train")

teacher = ModelConfig.for_fn(LENET, comment="LeNet-5 teacher")
student = ModelConfig.for_fn(MLP, hidden_sizes=[16], comment="MLP 16 student")

train_teacher = TrainerConfig.for_fn(TRAINER, epochs=10, lr=3e-3, comment="10 epochs")
teacher_logits = TrainerConfig.for_fn(GENERATE, comment="teacher logits")
train_student = TrainerConfig.for_fn(TRAINER, epochs=60, lr=1e-2, comment="labels only")
distill_student = TrainerConfig.for_fn(
    TRAINER,
    epochs=60,
    lr=1e-2,
    modules={"distillation": {"temperature": 4.0, "alpha": 0.9}},
    comment="distillation",
)

experiments = {
    "distilled_student": TransferExperiment(
        [
            Experiment(all_digits, teacher, train_teacher, seed=SEEDS),
            Experiment(few_digits, teacher, teacher_logits, seed=SEEDS),
            Experiment(few_digits, student, distill_student, seed=SEEDS),
        ],
        update=[None, {"data_transfer": True}, None],  # step 1 hands on its logits
    ),
    "student_alone": Experiment(few_digits, student, train_student, seed=SEEDS),
}
