"""Experiments (dataset + model + trainer + seeds) and transfer chains of them.

An :class:`Experiment` is one training per seed.  A :class:`TransferExperiment`
is a chain: step k trains experiment k starting from what step k-1 handed
over, either its model state or the data it generated (``data_transfer``).
Both only describe rows: ``nntransfer.insert(experiment)`` (the table layer)
fills the config tables and plans the chain, and running them is the table
layer's job too.
"""

from nntransfer.configs.base import DatasetConfig, ModelConfig, TrainerConfig
from nntransfer.errors import ConfigError
from nntransfer.steps import chain_keys

MAX_SEED = 2**31 - 1
"""Largest seed: seeds are stored in a 32-bit signed integer column."""

STEP_OPTIONS = {"data_transfer": False}
"""Per-step transfer options and their defaults.

``data_transfer``: this step hands its generated data (True) or its model
state (False) to the next step, as in nnfabrik's transfer tables.
"""


class Experiment:
    """One dataset, model and trainer config, trained once per seed.

    ``seed`` is one int or a list of ints (one row per seed); seeds lie in
    ``0 .. 2**31 - 1`` so that they fit the ``Seed`` table and numpy's seeding.
    """

    def __init__(self, dataset, model, trainer, seed=42, description=""):
        _check_config(dataset, DatasetConfig, "dataset")
        _check_config(model, ModelConfig, "model")
        _check_config(trainer, TrainerConfig, "trainer")
        if not isinstance(description, str):
            raise ConfigError(f"description must be a str, got {type(description).__name__}.")
        self.dataset = dataset
        self.model = model
        self.trainer = trainer
        self.seeds = _check_seeds(seed)
        self.description = description

    @property
    def configs(self):
        """The three configs, in the order they are built: dataset, model, trainer."""
        return (self.dataset, self.model, self.trainer)

    def key(self, seed=None):
        """The TrainedModel key for ``seed`` (may be left out when there is one seed)."""
        seed = _pick_seed(self.seeds, seed)
        key = {}
        for config in self.configs:
            key.update(config.key)
        key["seed"] = seed
        return key

    def keys(self):
        """One key per seed, in the order the seeds were given."""
        return [self.key(seed) for seed in self.seeds]

    def steps(self, seed=None):
        """This experiment as a one-step transfer chain (see :meth:`TransferExperiment.steps`)."""
        return TransferExperiment([self]).steps(seed)

    def __eq__(self, other):
        if not isinstance(other, Experiment):
            return NotImplemented
        return self.configs == other.configs and self.seeds == other.seeds

    __hash__ = None  # holds mutable configs

    def __repr__(self):
        seeds = self.seeds[0] if len(self.seeds) == 1 else list(self.seeds)
        return f"Experiment({self.dataset!r}, {self.model!r}, {self.trainer!r}, seed={seeds!r})"

    def _repr_html_(self):
        """Jupyter's view: the three configs side by side, with the seeds."""
        from nntransfer.views.html import escape

        cells = "".join(f'<td style="vertical-align:top;padding-right:16px">{c._repr_html_()}</td>' for c in self.configs)
        title = escape(self.description or "Experiment")
        return f"<div><b>{title}</b>, seeds {escape(', '.join(map(str, self.seeds)))}<table><tr>{cells}</tr></table></div>"


class TransferExperiment:
    """A chain of experiments; step k is ``experiments[k]``.

    ``update`` optionally gives per-step transfer options (one dict, or None,
    per step; keys from :data:`STEP_OPTIONS`).  Every step runs with the same
    seeds, because a chain is followed seed by seed.
    """

    def __init__(self, experiments, update=None, description=""):
        if not isinstance(experiments, (list, tuple)):
            raise ConfigError(
                f"experiments must be a list of Experiment objects, got {type(experiments).__name__}."
            )
        if not experiments:
            raise ConfigError("A TransferExperiment needs at least one experiment (step 0).")
        for index, experiment in enumerate(experiments):
            if not isinstance(experiment, Experiment):
                raise ConfigError(
                    f"experiments[{index}] is a {type(experiment).__name__}; every step must be an "
                    "Experiment(dataset, model, trainer, seed=...)."
                )
        seeds = experiments[0].seeds
        for index, experiment in enumerate(experiments):
            if experiment.seeds != seeds:
                raise ConfigError(
                    f"experiments[{index}] has seeds {list(experiment.seeds)} but step 0 has "
                    f"{list(seeds)}; every step of a chain must use the same seeds."
                )
        if not isinstance(description, str):
            raise ConfigError(f"description must be a str, got {type(description).__name__}.")
        self.experiments = tuple(experiments)
        self.options = _check_update(update, len(self.experiments))
        self.seeds = seeds
        self.description = description

    def __len__(self):
        return len(self.experiments)

    def steps(self, seed=None):
        """Per step, the full key that selects exactly that step's transfer row.

        Each dict holds the dataset/model/trainer fn and hash, ``seed``,
        ``transfer_step``, ``data_transfer`` (1 or 0, as the table stores the
        flag, so the dict restricts the table on every backend) and
        ``collapsed_history`` (``""`` at step 0, then folded from the previous
        step's key).
        """
        seed = _pick_seed(self.seeds, seed)
        configs = [{k: v for config in e.configs for k, v in config.key.items()} for e in self.experiments]
        return chain_keys(configs, seed, [options["data_transfer"] for options in self.options])

    def all_steps(self):
        """:meth:`steps` for every seed, in seed order (one flat list)."""
        return [key for seed in self.seeds for key in self.steps(seed)]

    def __eq__(self, other):
        if not isinstance(other, TransferExperiment):
            return NotImplemented
        return self.experiments == other.experiments and self.options == other.options

    __hash__ = None  # holds mutable configs

    def __repr__(self):
        return f"TransferExperiment({list(self.experiments)!r}, update={list(self.options)!r})"

    def _repr_html_(self):
        """Jupyter's view: one row per step with its three configs and what it hands on."""
        from nntransfer.views.html import escape

        rows = []
        for step, (experiment, options) in enumerate(zip(self.experiments, self.options)):
            hands_on = "-" if step == len(self) - 1 else ("its generated data" if options["data_transfer"] else "its model state")
            cells = [f"<b>step {step}</b>", *(c._repr_html_() for c in experiment.configs), f"hands on {hands_on}"]
            rows.append("<tr>" + "".join(f'<td style="vertical-align:top;padding-right:16px">{c}</td>' for c in cells) + "</tr>")
        title = escape(self.description or f"TransferExperiment of {len(self)} steps")
        return f"<div><b>{title}</b>, seeds {escape(', '.join(map(str, self.seeds)))}<table>{''.join(rows)}</table></div>"


def _check_config(config, expected, name):
    if isinstance(config, type) and issubclass(config, expected):
        raise ConfigError(f"{name} is the class {config.__name__}; pass an instance, e.g. {config.__name__}().")
    if not isinstance(config, expected):
        raise ConfigError(f"{name} must be a {expected.__name__}, got {type(config).__name__}.")


def _check_seeds(seed):
    seeds = list(seed) if isinstance(seed, (list, tuple)) else [seed]
    if not seeds:
        raise ConfigError("seed is an empty list; give at least one seed.")
    for value in seeds:
        if type(value) is not int or not 0 <= value <= MAX_SEED:
            raise ConfigError(f"seed {value!r} is not an int in 0 .. {MAX_SEED}; seeds must be such ints.")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"seed list {seeds} has repeats; each seed gives one row, list it once.")
    return tuple(seeds)


def _pick_seed(seeds, seed):
    if seed is None:
        if len(seeds) > 1:
            raise ConfigError(f"This experiment has several seeds {list(seeds)}; say which: seed=...")
        return seeds[0]
    if seed not in seeds or type(seed) is not int:
        raise ConfigError(f"seed {seed!r} is not one of this experiment's seeds {list(seeds)}.")
    return seed


def _check_update(update, length):
    if update is None:
        return tuple(dict(STEP_OPTIONS) for _ in range(length))
    if not isinstance(update, (list, tuple)):
        raise ConfigError(f"update must be a list with one dict (or None) per step, got {type(update).__name__}.")
    if len(update) != length:
        raise ConfigError(
            f"update has {len(update)} entries but the chain has {length} steps; give one dict "
            "(or None) per step."
        )
    options = []
    for index, entry in enumerate(update):
        entry = {} if entry is None else entry
        if not isinstance(entry, dict):
            raise ConfigError(f"update[{index}] must be a dict or None, got {type(entry).__name__}.")
        unknown = sorted(set(entry) - set(STEP_OPTIONS))
        if unknown:
            raise ConfigError(f"update[{index}] has unknown options {unknown}; known are {list(STEP_OPTIONS)}.")
        step_options = {**STEP_OPTIONS, **entry}
        if type(step_options["data_transfer"]) is not bool:
            raise ConfigError(f"update[{index}]['data_transfer'] must be True or False.")
        options.append(step_options)
    return tuple(options)
