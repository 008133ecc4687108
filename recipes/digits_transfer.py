"""nnfabrik's transfer tutorial (seed 000) as a recipe on the digits data.

Run it with ``nntransfer run recipes/digits_transfer.py`` (or ``nntransfer
worker ...`` on several machines).  Two chains, seeds 1 and 2:

* ``model-state transfer``: train on digits, then continue from that model
  state on augmented digits (step 0 hands on its model state);
* ``distillation``: train a teacher, generate its logits for every sample
  (step 1, flagged ``data_transfer`` so it hands on that data), then train a
  smaller student on augmented digits with the teacher's soft targets.
"""

from nntransfer.configs import Experiment, TransferExperiment, config_class_for

Digits = config_class_for("nntransfer.datasets.digits.digits_dataset_fn", "dataset")
Mlp = config_class_for("nntransfer.models.mlp.mlp_model_fn", "model")
Train = config_class_for("nntransfer.trainer.standard.standard_trainer", "trainer")
Generate = config_class_for("nntransfer.trainer.generate.generate_transfer_data", "trainer")

SEEDS = [1, 2]
digits = Digits(batch_size=64, comment="digits")
augmented = Digits(batch_size=64, augmentation={"shift": 1, "noise": 0.05}, comment="augmented digits")
teacher_model = Mlp(hidden_sizes=[128], comment="teacher MLP")
student_model = Mlp(hidden_sizes=[32], comment="student MLP")
train = Train(epochs=10, lr=0.003, comment="train")
distill = Train(epochs=10, lr=0.003, modules={"distillation": {"temperature": 4.0, "alpha": 0.7}},
                comment="train on the teacher's logits")

teacher = Experiment(digits, teacher_model, train, seed=SEEDS, description="teacher on digits")

experiments = {
    "model-state transfer": TransferExperiment(
        [teacher, Experiment(augmented, teacher_model, train, seed=SEEDS, description="continue on augmented digits")],
    ),
    "distillation": TransferExperiment(
        [
            teacher,
            Experiment(digits, teacher_model, Generate(comment="teacher logits"), seed=SEEDS),
            Experiment(augmented, student_model, distill, seed=SEEDS, description="student on augmented digits"),
        ],
        update=[None, {"data_transfer": True}, None],
    ),
}
