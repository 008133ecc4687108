"""A standard_trainer config is checked when it is made: every name in its options, before anything is hashed."""

import ast
import re
import runpy
import textwrap
from pathlib import Path

import pytest

from nntransfer.configs import TrainerConfig
from nntransfer.errors import ConfigError
from nntransfer.trainer.standard import standard_trainer

STANDARD = "nntransfer.trainer.standard.standard_trainer"
ROOT = Path(__file__).resolve().parents[3]


def make(**options):
    return TrainerConfig.for_fn(STANDARD, **options)


@pytest.mark.parametrize(
    "options, match",
    [
        ({"modules": {"early_stoping": {"patience": 3}}}, r"unknown main-loop module 'early_stoping'; Did you mean 'early_stopping'\?"),
        ({"modules": {"early_stopping": {"patiance": 3}}},
         r"main-loop module 'early_stopping' has no option 'patiance'. Did you mean 'patience'\? It accepts: objective, maximize, patience"),
        ({"optimizer": "Adam"}, r"unknown optimizer 'Adam'; Did you mean 'adam'\?"),
        ({"loss": "crossentropy"}, r"unknown loss 'crossentropy'; Did you mean 'cross_entropy'\?"),
        ({"score_metric": "validation.f1"},
         r"score_metric 'validation.f1' is not a metric this run measures. Did you mean 'validation.loss'\?.*Known: validation.loss, validation.accuracy"),
        ({"score_metric": "validation.acuracy"}, r"Did you mean 'validation.accuracy'\?"),
        ({"modules": {"lr_schedule": {"kind": "stepp", "step_size": 2}}}, r"lr_schedule: unknown kind 'stepp'; Did you mean 'step'\? known: step, multistep, plateau, cosine"),
        ({"modules": {"lr_schedule": {"kind": "step", "step_size": 2, "gama": 0.5}}},
         r"lr_schedule kind 'step' has no option 'gama'. Did you mean 'gamma'\?"),
        ({"modules": {"lr_schedule": {"kind": "plateau", "monitor": "validation.los"}}},
         r"main-loop module 'lr_schedule': monitor 'validation.los' is not a metric this run measures. Did you mean 'validation.loss'\?"),
        ({"modules": {"early_stopping": {"objective": "validation.acuracy"}}},
         r"main-loop module 'early_stopping': objective 'validation.acuracy' is not a metric .* Did you mean 'validation.accuracy'\?"),
        ({"optimizer": "sgd", "optimizer_options": {"momentun": 0.9}}, r"optimizer 'sgd' has no option 'momentun'. Did you mean 'momentum'\?"),
        ({"loss_options": {"label_smothing": 0.1}}, r"loss 'cross_entropy' has no option 'label_smothing'. Did you mean 'label_smoothing'\?"),
        ({"loss": "torch.nn.functional.cross_entropy", "loss_options": {"label_smothing": 0.1}},
         r"has no option 'label_smothing'. Did you mean 'label_smoothing'\?"),
        ({"nan_policy": "skipp"}, r"nan_policy must be one of .* got 'skipp'. Did you mean 'skip'\?"),
        ({"modules": {"representation_matching": {"layer": "0", "distance": "cosin"}}}, r"unknown distance 'cosin'; Did you mean 'cosine'\?"),
        ({"modules": {"representation_monitor": {"layers": ["0"], "statistics": ["mea"]}}}, r"unknown statistics \['mea'\]; Did you mean 'mean'\?"),
    ],
)
def test_a_typo_in_a_nested_option_fails_when_the_config_is_made(options, match):
    with pytest.raises(ConfigError, match=match):
        make(**options)


@pytest.mark.parametrize(
    "options, match",
    [
        ({"modules": {"representation_matching": {}}}, r"main-loop module 'representation_matching' needs layer \(no default\)"),
        ({"modules": {"lr_schedule": {"kind": "step"}}}, r"kind 'step' needs step_size"),
        ({"modules": {"early_stopping": {"objective": "validation.weirdness_index", "maximize": True}}}, r"is not a metric"),
        ({"modules": {"early_stopping": {"objective": "test.loss"}}}, r"objective 'test.loss' is not a metric .*Every epoch measures the splits \['train', 'validation'\]"),
        ({"optimizer": "torch.nn.Linear"}, r"optimizer 'torch.nn.Linear' resolves to .* not a torch.optim.Optimizer subclass"),
        ({"optimizer_options": {"lr": 0.1}}, r"'lr' is not an option here, the trainer passes it itself"),
        ({"modules": {"torch.nn.Linear": {}}}, r"not a MainLoopModule subclass"),
        ({"modules": {"early_stopping": [3]}}, r"options of main-loop module 'early_stopping' must be a dict"),
        ({"score_metric": "test.accuracy", "final_splits": ["validation"]}, r"final evaluation of final_splits \['validation'\]"),
        ({"score_metric": "train.grad_norm", "final_splits": ["train"]}, r"'train.grad_norm' is not a metric"),
        ({"device": "cdua"}, r"device 'cdua' is not a torch device"),
        ({"epochs": -1}, r"epochs must be an integer >= 0"),
    ],
)
def test_other_bad_options_fail_when_the_config_is_made(options, match):
    with pytest.raises(ConfigError, match=match):
        make(**options)


def test_lr_is_an_epoch_metric_that_a_plateau_schedule_may_monitor():
    make(modules={"lr_schedule": {"kind": "plateau", "monitor": "lr", "mode": "min"}})


@pytest.mark.parametrize(
    "options",
    [
        {"score_metric": "test.loss"},
        {"score_metric": "validation.mnist.accuracy"},  # one loader per task: measured per data key
        {"modules": {"grad_clip": {"max_norm": 1.0}}, "score_metric": "train.grad_norm", "final_splits": ["train"]},
        {"modules": {"distillation": {"phases": ["train", "validation"]},
                     "early_stopping": {"objective": "validation.distillation_loss"}}},
        {"modules": {"noise_augmentation": {"std": 0.1},
                     "representation_matching": {"layer": "0"},
                     "checkpointing": {"objective": "train.representation_matching_loss", "folder": "x"}}},
        {"modules": {"representation_monitor": {"layers": ["0"]},
                     "early_stopping": {"objective": "validation.repr.0.mean", "maximize": True}}},
        {"modules": {"lr_schedule": {"kind": "cosine"}}},  # T_max is filled in by the module
        {"modules": {"lr_schedule": {"kind": "multistep", "milestones": [2], "gamma": 0.5}}},
        {"modules": {"progress": None}, "optimizer": "torch.optim.SGD", "optimizer_options": {"momentum": 0.9}},
        {"loss": "torch.nn.functional.cross_entropy", "loss_options": {"label_smoothing": 0.1}},
    ],
)
def test_valid_configs_still_construct(options):
    make(**options)


def test_the_loop_reports_a_typo_in_the_words_of_the_config_check(model, loaders):
    """Code that calls the trainer directly gets the config's check, before any training."""
    options = {"optimizer": "sgd", "optimizer_options": {"momentun": 0.9}}
    with pytest.raises(ConfigError) as at_config:
        make(**options)
    with pytest.raises(ConfigError) as at_run:
        standard_trainer(model, loaders, seed=0, epochs=1, device="cpu", **options)
    assert str(at_run.value) == str(at_config.value)
    modules = {"early_stopping": {"patiance": 3}}
    with pytest.raises(ConfigError) as at_config:
        make(modules=modules)
    with pytest.raises(ConfigError) as at_run:
        standard_trainer(model, loaders, seed=0, epochs=1, device="cpu", modules=modules)
    assert str(at_run.value) == str(at_config.value)


USER_CODE = '''
from nntransfer.trainer.module import MainLoopModule


class Penalty(MainLoopModule):
    name = "penalty"
    added_metrics = ("penalty",)
    metric_options = ("watch",)

    def __init__(self, weight: float, watch: str = "validation.loss", scale: float = 1.0):
        self.weight = weight
        self.watch = watch


def unchecked_trainer(model, dataloaders, seed, uid=None, cb=None, *, modules: dict | None = None,
                      optimizer: str = "adam", score_metric: str = "validation.accuracy"):
    return 0.0, {}, {}
'''


@pytest.fixture
def user_code(tmp_path, monkeypatch):
    """An importable module of user code, unique per test."""
    name = f"user_code_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(USER_CODE))
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def test_a_user_module_is_checked_against_its_own_signature(user_code):
    penalty = f"{user_code}.Penalty"
    make(modules={penalty: {"weight": 0.1, "watch": "validation.penalty"}}, score_metric="test.penalty")
    with pytest.raises(ConfigError, match=rf"main-loop module '{penalty}' has no option 'wieght'. Did you mean 'weight'\? "
                                          r"It accepts: weight, watch, scale"):
        make(modules={penalty: {"wieght": 0.1}})
    with pytest.raises(ConfigError, match=r"needs weight \(no default\)"):
        make(modules={penalty: {"scale": 2.0}})
    with pytest.raises(ConfigError, match=r"watch 'validation.penalyt' is not a metric .*Did you mean 'validation.penalty'\?"):
        make(modules={penalty: {"weight": 0.1, "watch": "validation.penalyt"}})


def test_a_user_trainer_without_check_config_is_unaffected(user_code):
    config = TrainerConfig.for_fn(f"{user_code}.unchecked_trainer", modules={"early_stoping": {}},
                                  optimizer="Adam", score_metric="validation.f1")
    assert config.to_dict()["modules"] == {"early_stoping": {}}


@pytest.mark.parametrize("recipe", sorted((ROOT / "recipes").glob("*.py")), ids=lambda path: path.stem)
def test_the_configs_of_every_recipe_still_construct(recipe):
    """A recipe makes its configs when it runs, whatever else it defines (experiments, a search)."""
    runpy.run_path(str(recipe))


def documented_module_mappings():
    """Every ``modules={...}`` literal in the README and the docs, with where it is."""
    found = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        text = page.read_text()
        for match in re.finditer(r"modules=\{", text):
            start = match.end() - 1
            depth = 0
            for end in range(start, len(text)):
                depth += {"{": 1, "}": -1}.get(text[end], 0)
                if depth == 0:
                    break
            mapping = ast.literal_eval(re.sub(r"\s+", " ", text[start:end + 1]))
            found.append(pytest.param(mapping, id=f"{page.name}:{text.count(chr(10), 0, start) + 1}"))
    return found


@pytest.mark.parametrize("modules", documented_module_mappings())
def test_every_documented_module_mapping_constructs(modules):
    if any(name.startswith("my_package.") for name in modules):
        pytest.skip("names the package the reader writes (docs/trainer.md, 'Writing your own module')")
    make(modules=modules)
