"""nnfabrik's ``hypersearch.Random`` and ``hypersearch.Bayesian`` on nntransfer's search engine.

The constructors, parameter formats and ``run`` results are nnfabrik's: fixed
configs plus ``*_config_auto`` dicts of Ax-style parameters, an
``architect`` (fabrikant) and the ``trained_model_table`` as a dotted path.
Underneath, each trial is a trial of :mod:`nntransfer.search`: an Optuna
study in the table's schema, configs inserted through the one insertion
path (so an existing config is answered from its row, never retrained), and
training through the table's ``populate`` with reserved jobs.

Parameters (Ax's format)::

    {"type": "range", "bounds": [1e-4, 1e-1], "log_scale": True}   # float (int when both bounds are ints
                                                                    # or "value_type": "int")
    {"type": "choice", "values": [32, 64, 128]}
    {"type": "fixed", "value": 0.5}
    {"type": "int"}                                                 # Random only: any int32, as for the seed

Differences, on purpose: ``Bayesian`` runs Optuna's Gaussian-process sampler
(``sampler=`` takes any sampler :class:`~nntransfer.search.Search` accepts)
instead of Ax; ``arms_per_trial`` must be 1 (a trial trains one
configuration; run more workers for parallel trials); ``Bayesian.run``
returns ``(best_parameters, ({"val_corr": best value}, None), study,
sampler)`` in place of Ax's experiment and model; a trial's value is the
mean score over the seeds it trains (``Bayesian`` trains every seed of the
table's Seed table, as nnfabrik's populate did).
"""

from __future__ import annotations

from ...configs import DatasetConfig, Experiment, ModelConfig, TrainerConfig
from ...configs.experiment import MAX_SEED
from ...errors import ConfigError
from ...hashing import canonical_json, digest
from ...resolve import import_dotted
from ...search import Categorical, Integer, LogUniform, Search, Uniform

KINDS = ("dataset", "model", "trainer")
CONFIG_CLASSES = {"dataset": DatasetConfig, "model": ModelConfig, "trainer": TrainerConfig}


def _dimension(parameter: dict):
    """An Ax-style parameter dict as a search dimension (None for a fixed value)."""
    kind = parameter.get("type")
    name = parameter.get("name")
    if kind == "fixed":
        return None
    if kind == "choice":
        values = parameter.get("values")
        if not isinstance(values, (list, tuple)):
            raise ConfigError(f"parameter {name!r}: a choice needs 'values', a list.")
        return Categorical([tuple(v) if isinstance(v, list) else v for v in values])
    if kind == "range":
        bounds = parameter.get("bounds")
        if not isinstance(bounds, (list, tuple)) or len(bounds) != 2:
            raise ConfigError(f"parameter {name!r}: a range needs 'bounds': [low, high].")
        low, high = bounds
        log = bool(parameter.get("log_scale", False))
        integer = parameter.get("value_type") == "int" or (
            parameter.get("value_type") is None and all(type(b) is int for b in bounds))
        if integer:
            return Integer(int(low), int(high), log=log)
        return LogUniform(low, high) if log else Uniform(low, high)
    if kind == "int":
        return Integer(0, MAX_SEED)
    raise ConfigError(f"parameter {name!r} has type {kind!r}; nnfabrik's hypersearch knows 'range', 'choice', "
                      "'fixed' and (Random) 'int'.")


class _Hypersearch:
    """What Random and Bayesian share: parameters in nnfabrik's form, trials through nntransfer.search."""

    sampler = "tpe"
    label = "hypersearch"

    def __init__(self, fns, fixed, auto, architect, trained_model_table, total_trials, comment, seed_auto=None,
                 sampler=None):
        self.fns = fns
        self.fixed_params = fixed
        self.auto_params = self.get_auto_params(*(auto[kind] or {} for kind in KINDS), *(
            [seed_auto or {}] if seed_auto is not None else []))
        self.architect = architect
        self.total_trials = total_trials
        self.comment = comment
        if isinstance(trained_model_table, str):
            trained_model_table = import_dotted(trained_model_table, "trained_model_table")
        self.trained_model_table = trained_model_table
        self._sampler = sampler or self.sampler

    @staticmethod
    def get_fixed_params(dataset_config, model_config, trainer_config):
        """The fixed configs as ``{"dataset": ..., "model": ..., "trainer": ...}``."""
        return dict(dataset=dataset_config, model=model_config, trainer=trainer_config)

    @staticmethod
    def get_auto_params(dataset_config_auto, model_config_auto, trainer_config_auto, seed_config_auto=None):
        """The searched parameters as a list of Ax-style dicts named ``"<kind>.<field>"``."""
        groups = [("dataset", dataset_config_auto), ("model", model_config_auto), ("trainer", trainer_config_auto)]
        if seed_config_auto is not None:
            groups.append(("seed", seed_config_auto))
        params = []
        for kind, group in groups:
            for field, spec in (group or {}).items():
                if not isinstance(spec, dict):
                    raise ConfigError(f"{kind}_config_auto[{field!r}] must be a dict such as "
                                      "{'type': 'range', 'bounds': [0.001, 0.1]}, got {spec!r}.")
                params.append({"name": f"{kind}.{field}", **spec})
        return params

    # -- the search underneath -------------------------------------------
    def _fixed_values(self) -> dict:
        """Fixed configs with the parameters of type 'fixed' put in; ``seed`` holds the fixed seed, if any."""
        values = {kind: dict(self.fixed_params.get(kind) or {}) for kind in KINDS}
        for parameter in self.auto_params:
            if parameter.get("type") == "fixed":
                kind, _, field = parameter["name"].partition(".")
                values.setdefault(kind, {})[field] = parameter.get("value")
        return values

    def _seeds(self, values) -> list:
        if "seed" in values.get("seed", {}):
            return [values["seed"]["seed"]]
        if any(p["name"] == "seed.seed" for p in self.auto_params):
            return [0]  # replaced by the sampled seed
        table = self.trained_model_table
        seeds = [int(row["seed"]) for row in table.seed_table().to_dicts()]
        if not seeds:
            raise ConfigError("the Seed table is empty; insert a seed first (Seed().insert1({'seed': 42})), "
                              "as nnfabrik's populate trains each config once per seed.")
        return sorted(seeds)

    def _search(self, trials: int) -> Search:
        values = self._fixed_values()
        configs = {kind: CONFIG_CLASSES[kind].for_fn(self.fns[kind], **values[kind], comment=self.comment)
                   for kind in KINDS}
        base = Experiment(configs["dataset"], configs["model"], configs["trainer"], seed=self._seeds(values))
        space = {}
        for parameter in self.auto_params:
            dimension = _dimension(parameter)
            if dimension is not None:
                space["seed" if parameter["name"] == "seed.seed" else parameter["name"]] = dimension
        identity = digest(canonical_json({"fns": self.fns, "fixed": values, "auto": self.auto_params,
                                          "table": self._table_name()}, "hypersearch"))
        return Search(base, space, name=f"{self.label} {identity}", objective="score", direction="maximize",
                      trials=trials, sampler=self._sampler, table=self.trained_model_table,
                      description=self.comment)

    def _table_name(self) -> str:
        table = self.trained_model_table
        return table.__name__ if isinstance(table, type) else type(table).__name__

    def _optimize(self, search, trials):
        from ...search import optimize

        return optimize(search, trials=trials, fabrikant=self.architect)

    def train_evaluate(self, auto_params):
        """Train the configs of one set of values (``{"trainer.lr": 0.01, ...}``) as a trial; return its score."""
        from ...search import open_study

        search = self._search(trials=1)
        study = open_study(search)
        params = {}
        for dimension in search.dimensions:
            name = "seed.seed" if dimension.key == "seed" else dimension.key
            if name not in auto_params:
                raise ConfigError(f"auto_params lacks {name!r}; give a value for every searched parameter.")
            value = auto_params[name]
            params[dimension.key] = dimension.values.encode(value) if isinstance(dimension.values, Categorical) else value
        study.enqueue_trial(params)
        self._optimize(search, trials=1)
        trial = study.get_trials(deepcopy=False)[-1]
        return trial.value


class Bayesian(_Hypersearch):
    """Bayesian optimisation of the score in ``trained_model_table`` (nnfabrik's API; Optuna's GP sampler)."""

    sampler = "gp"
    label = "nnfabrik Bayesian"

    def __init__(self, dataset_fn, dataset_config, dataset_config_auto, model_fn, model_config, model_config_auto,
                 trainer_fn, trainer_config, trainer_config_auto, architect, trained_model_table, total_trials=5,
                 arms_per_trial=1, comment="Bayesian optimization of Hyper params.", sampler=None):
        if arms_per_trial != 1:
            raise ConfigError(f"arms_per_trial={arms_per_trial!r}: each trial trains one configuration here; "
                              "raise total_trials, and start more workers to run trials side by side.")
        super().__init__(
            dict(dataset=dataset_fn, model=model_fn, trainer=trainer_fn),
            self.get_fixed_params(dataset_config, model_config, trainer_config),
            dict(dataset=dataset_config_auto, model=model_config_auto, trainer=trainer_config_auto),
            architect, trained_model_table, total_trials, comment, sampler=sampler,
        )
        self.arms_per_trial = arms_per_trial

    def run(self):
        """Run ``total_trials`` trials; return ``(best_parameters, values, study, sampler)``."""
        from ...search import open_study

        search = self._search(trials=self.total_trials)
        self._optimize(search, self.total_trials)
        study = open_study(search)
        best = study.best_trial
        split = {"dataset": {}, "model": {}, "trainer": {}, "others": {}}
        for key, value in search.values_of(best.params).items():
            kind, _, field = key.partition(".")
            split[kind if kind in split else "others"][field or kind] = value
        return split, ({"val_corr": best.value}, None), study, study.sampler


class Random(_Hypersearch):
    """Random search (nnfabrik's API): ``total_trials`` configurations drawn at random, each trained once."""

    sampler = "random"
    label = "nnfabrik Random"

    def __init__(self, dataset_fn, dataset_config, dataset_config_auto, model_fn, model_config, model_config_auto,
                 trainer_fn, trainer_config, trainer_config_auto, seed_config_auto, architect, trained_model_table,
                 total_trials=5, comment="Random search for hyper params."):
        super().__init__(
            dict(dataset=dataset_fn, model=model_fn, trainer=trainer_fn),
            self.get_fixed_params(dataset_config, model_config, trainer_config),
            dict(dataset=dataset_config_auto, model=model_config_auto, trainer=trainer_config_auto),
            architect, trained_model_table, total_trials, comment, seed_auto=seed_config_auto,
        )

    def _fixed_values(self) -> dict:
        values = super()._fixed_values()
        values["seed"] = values.get("seed", {})
        return values

    def gen_params_value(self):
        """One random value per parameter, ``{"<kind>.<field>": value}`` (fixed ones as given)."""
        import optuna

        search = self._search(trials=1)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        trial = optuna.create_study(sampler=optuna.samplers.RandomSampler()).ask(search.distributions())
        values = {("seed.seed" if key == "seed" else key): value for key, value in search.values_of(trial.params).items()}
        values.update({p["name"]: p.get("value") for p in self.auto_params if p.get("type") == "fixed"})
        return values

    def run(self):
        """Run ``total_trials`` trials; return the study."""
        search = self._search(trials=self.total_trials)
        self._optimize(search, self.total_trials)
        from ...search import open_study

        return open_study(search)
