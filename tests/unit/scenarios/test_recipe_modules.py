"""Every recipe module loads, names functions that exist, and has the chains its docstring describes."""

from pathlib import Path

import pytest

from nntransfer.resolve import resolve_fn
from nntransfer.runner import load_recipe

RECIPES = Path(__file__).resolve().parents[3] / "recipes"
CHAINS = {
    "digits_kd": {"distilled_student": 3, "student_alone": 1},
    "digits_finetune": {"scratch": 1, "frozen_extractor": 2, "finetune": 2, "cached_extractor": 3},
    "digits_multigrid": {"multigrid": 2, "scratch_16": 1},
    "mnist_tutorial": {"model_state_transfer": 2, "knowledge_distillation": 3},
}
DATA_STEPS = {"digits_kd": "distilled_student", "digits_finetune": "cached_extractor", "mnist_tutorial": "knowledge_distillation"}


@pytest.mark.parametrize("name", sorted(CHAINS))
def test_recipe_chains_and_functions(name):
    recipe = load_recipe(str(RECIPES / f"{name}.py"))
    assert {chain: len(steps) for chain, steps in recipe.chains.items()} == CHAINS[name]
    for chain in recipe.chains.values():
        for experiment in chain.experiments:
            for config in experiment.configs:
                assert callable(resolve_fn(config.fn, f"{config.kind}_fn"))
    if name in DATA_STEPS:
        # The logit/feature step (second to last) hands on data; the others hand on their state.
        chain = recipe.chains[DATA_STEPS[name]]
        flags = [key["data_transfer"] for key in chain.steps(chain.seeds[0])]
        assert flags == [False, True, False]


def test_multigrid_changes_only_the_resolution():
    chain = load_recipe(str(RECIPES / "digits_multigrid.py")).chains["multigrid"]
    coarse, fine = chain.experiments
    assert coarse.model == fine.model and "transfer" not in coarse.model.to_dict()
    assert fine.dataset.to_dict()["image_size"] == 16 and coarse.dataset.to_dict()["image_size"] is None


def test_mnist_tutorial_reads_its_root_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("NNTRANSFER_MNIST_ROOT", str(tmp_path))
    recipe = load_recipe(str(RECIPES / "mnist_tutorial.py"))
    roots = {
        experiment.dataset.to_dict()["root"]
        for chain in recipe.chains.values()
        for experiment in chain.experiments
    }
    assert roots == {str(tmp_path)}
