"""What a search found: its status, a results frame with one row per trial, and Optuna's figures.

All three read the study from the database and never make one: a search no
worker has started yet is reported as such.
"""

from __future__ import annotations

import warnings

from ..errors import ConfigError
from .targets import target_for

STATES = ("complete", "running", "waiting", "pruned", "failed", "retried")
"""Trial states as ``status`` counts them; ``retried``: failed with its worker, queued again as a new trial."""


def load_study(search):
    """The search's study, or None when no trial has started yet."""
    import optuna

    from .storage import open_storage

    target = target_for(search.table)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = open_storage(target.connection, target.schema, heartbeat_interval=60, grace_period=300)
    try:
        return optuna.load_study(study_name=search.name, storage=storage)
    except KeyError:
        return None


def _state(trial) -> str:
    from optuna.trial import TrialState

    if trial.state == TrialState.FAIL:
        return "failed" if "error" in trial.user_attrs else "retried"
    return trial.state.name.lower()


def status(search) -> dict:
    """``{"name", "objective", "direction", "budget", "counts": {state: n}, "duplicates", "best": {...} or None}``."""
    study = load_study(search)
    counts = dict.fromkeys(STATES, 0)
    result = {"name": search.name, "objective": search.objective, "direction": search.direction,
              "budget": search.trials, "counts": counts, "duplicates": 0, "best": None}
    if study is None:
        return result
    for trial in study.get_trials(deepcopy=False):
        counts[_state(trial)] += 1
        result["duplicates"] += bool(trial.user_attrs.get("duplicate"))
    complete = [t for t in study.get_trials(deepcopy=False) if _state(t) == "complete"]
    if complete:
        best = study.best_trial
        result["best"] = {"trial": best.number, "value": best.value, "params": search.values_of(best.params)}
    return result


def format_status(result: dict) -> str:
    """The text ``nntransfer status`` prints for a search."""
    counts = result["counts"]
    budget = f"{result['budget']} trials" if result["budget"] else "a time limit"
    lines = [f"search {result['name']!r}: {result['direction']} {result['objective']}, budget {budget}",
             "trials " + "".join(f"{state:>10}" for state in STATES),
             "       " + "".join(f"{counts[state]:>10}" for state in STATES),
             f"duplicates (answered from stored results): {result['duplicates']}"]
    best = result["best"]
    if best is None:
        lines.append("best: no trial complete yet")
    else:
        params = ", ".join(f"{key}={value!r}" for key, value in best["params"].items())
        lines.append(f"best: trial {best['trial']}, {result['objective']} = {best['value']:.6g} with {params}")
    return "\n".join(lines)


def results(search):
    """A pandas DataFrame, one row per trial: number, state, value, the sampled values, duplicate, the trained key."""
    import pandas as pd

    study = load_study(search)
    target = target_for(search.table)
    rows = []
    for trial in study.get_trials(deepcopy=False) if study is not None else []:
        row = {"trial": trial.number, "state": _state(trial), "value": trial.value,
               "duplicate": bool(trial.user_attrs.get("duplicate", False))}
        values = search.values_of(trial.params) if len(trial.params) == len(search.dimensions) else {}
        row.update(values)
        row["duration_s"] = trial.duration.total_seconds() if trial.duration is not None else None
        row["message"] = trial.user_attrs.get("error") or trial.user_attrs.get("pruned") or ""
        if values:  # the key of the trained step (of the first seed)
            row.update(target.identity_key(target.keys(search.experiment_for(values))[1][0]))
        rows.append(row)
    columns = ["trial", "state", "value", *(d.key for d in search.dimensions), "duplicate", "duration_s", "message"]
    frame = pd.DataFrame(rows)
    return frame.reindex(columns=columns + [c for c in frame.columns if c not in columns])


def plot(search, history_path, importance_path) -> list:
    """Write Optuna's optimisation history and parameter importances as figures; return what was written.

    Importances need at least two complete trials that differ; when they
    cannot be computed the reason is returned instead of a path.
    """
    import matplotlib.pyplot as plt
    import optuna
    from optuna.visualization import matplotlib as optuna_plots

    study = load_study(search)
    if study is None or not any(_state(t) == "complete" for t in study.get_trials(deepcopy=False)):
        raise ConfigError(f"the search {search.name!r} has no complete trial yet; run `nntransfer search` first.")
    written = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.filterwarnings("ignore", message=".*[Ii]mportances will be equal")  # few, alike trials: still drawn
        for path, draw in ((history_path, optuna_plots.plot_optimization_history),
                           (importance_path, optuna_plots.plot_param_importances)):
            try:
                axes = draw(study)
            except (ValueError, RuntimeError) as error:
                written.append(f"{path} not written: {error}")
                continue
            figure = axes.figure
            figure.set_size_inches(8, 5)
            figure.tight_layout()
            figure.savefig(path, dpi=90)
            plt.close(figure)
            written.append(str(path))
    return written


def delete_study(search) -> bool:
    """Delete the search's study (its trials; trained rows stay); return False when there was none."""
    import optuna

    study = load_study(search)
    if study is None:
        return False
    optuna.delete_study(study_name=search.name, storage=study._storage)
    return True
