"""Running trials: Optuna samples, the tables train, the study is told.

One trial: Optuna's sampler draws values for the space, the search builds
the chain with them (hashed configs, as any experiment), the table layer
inserts it and trains its steps with reserved jobs, and the objective read
from the trained rows is told to the study.  What makes it more than
``study.optimize``:

* **a config is trained once**: a trial whose configs exist already is
  answered from the stored rows (or waits for the worker training them) and
  marked ``duplicate``; steps shared by every trial (a pretrained backbone)
  are trained by the first trial and reused by the rest;
* **pruning through the trainer's ``cb``**: the objective of each epoch is
  reported to the trial; a trial the pruner stops ends its training with
  :class:`~nntransfer.errors.TrainingPruned`, its job records "pruned" and its
  checkpoints are dropped;
* **many workers, one budget**: the study's trials are counted and the next
  one started under a database lock, so workers never overshoot ``trials``;
  each trial sends heartbeats, and a trial whose worker died is failed and
  queued again by the next worker (Optuna's heartbeat and retry), which
  resumes its training from the job's last checkpoint once the job's
  reservation has timed out;
* **stopped cleanly**: Ctrl-C or SIGTERM (see
  :mod:`nntransfer.trainer.interrupt`) stops the training in progress at its
  next batch boundary after a checkpoint and gives its job back; the trial
  is failed as interrupted and queued again at once, so the budget stays
  right and the next worker resumes it; no new trial starts, and
  :class:`~nntransfer.trainer.interrupt.Interrupted` ends :func:`optimize`
  (the command line exits 130 or 143).
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
import warnings
from collections import Counter

from ..errors import ConfigError, JobTakenOver, NNTransferError, TrainingPruned
from ..resolve import allow_packages
from ..tables.pruning import PRUNED
from ..trainer import interrupt
from .samplers import build_pruner, build_sampler
from .storage import open_storage, study_lock
from .targets import target_for

log = logging.getLogger(__name__)

FINGERPRINT = "nntransfer.fingerprint"
"""Study user attribute: the fingerprint of the search that made the study."""


def open_study(search, target=None, orphan_timeout: float = 300.0):
    """The search's Optuna study, made on first use, in the schema of its table."""
    import optuna

    target = target or target_for(search.table)
    grace = max(1, int(round(orphan_timeout)))
    storage = open_storage(target.connection, target.schema, heartbeat_interval=max(1, grace // 4), grace_period=grace)
    sampler = build_sampler(search.sampler, search.dimensions)
    pruner = build_pruner(search.pruner)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(storage=storage, study_name=search.name, direction=search.direction,
                                sampler=sampler, pruner=pruner, load_if_exists=True)
    stored = study.user_attrs.get(FINGERPRINT)
    if stored is None:
        study.set_user_attr(FINGERPRINT, search.fingerprint)
        study.set_user_attr("objective", search.objective)
        study.set_user_attr("space", {d.key: repr(d.values) for d in search.dimensions})
    elif stored != search.fingerprint:
        raise ConfigError(
            f"the study {search.name!r} in schema {target.schema!r} was made by a different search (another base, "
            "space, objective or direction); give this search another name, or delete the old study with "
            "nntransfer.search.delete_study(search)."
        )
    if study.direction.name.lower() != search.direction:
        raise ConfigError(f"the study {search.name!r} is to {study.direction.name.lower()}, the search to {search.direction}.")
    return study


def optimize(search, *, trials: int | None = None, timeout: float | None = None, orphan_timeout: float = 300.0,
             poll: float = 1.0, fabrikant=None) -> dict:
    """Run trials of ``search`` in this process; return counts ``{"complete", "pruned", "failed", "duplicates", ...}``.

    Without ``trials``, trials are started until the study's budget
    (``search.trials``, all workers together) is used, then the worker waits
    for trials still running elsewhere (a dead worker's trial is queued again
    and run here).  With ``trials``, exactly that many more trials run here.
    ``timeout`` (default ``search.timeout``): seconds after which no new trial
    starts.  ``orphan_timeout``: seconds of silence after which another
    worker's trial and training are taken over.
    """
    check_run_budget(trials, timeout)
    target = target_for(search.table)
    study = open_study(search, target, orphan_timeout)
    # the search is code the user runs: the packages of its functions are trusted (see nntransfer.resolve)
    allow_packages(*{config.fn.split(".")[0] for experiment in search.base.experiments for config in experiment.configs})
    timeout = search.timeout if timeout is None else timeout
    counts = Counter()
    with interrupt.handling_signals(), _as_in_optimize(study):
        try:
            _run_trials(search, study, target, counts, trials, timeout, orphan_timeout, poll, fabrikant)
        except interrupt.Interrupted:
            log.warning("search %s stopped after %d trials here; no new trial was started", search.name,
                        counts["trials"])
            raise
        finally:
            study._storage.remove_session()  # as study.optimize ends: this thread's session, once
    return {name: counts[name] for name in ("trials", "complete", "pruned", "failed", "duplicates")}


def check_run_budget(trials, timeout) -> None:
    """What :func:`optimize` is given instead of the search's budget: None, or at least one trial or second."""
    if trials is not None and (type(trials) is not int or trials < 1):
        raise ConfigError(f"trials must be a whole number >= 1, got {trials!r}; a budget of 0 trials runs nothing.")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
                                or not math.isfinite(timeout) or timeout <= 0):
        raise ConfigError(f"timeout must be a number of seconds > 0, got {timeout!r}; a time limit of 0 starts no "
                          "trial.")


def _run_trials(search, study, target, counts, trials, timeout, orphan_timeout, poll, fabrikant) -> None:
    """The loop of :func:`optimize`: start trials until the budget, the time limit or a stop request ends it."""
    started = next_stale_check = time.monotonic()
    while True:
        interrupt.raise_if_requested("no new trial was started")
        if timeout is not None and time.monotonic() - started >= timeout:
            return
        if trials is not None and counts["trials"] >= trials:
            return
        stale_check = time.monotonic() >= next_stale_check
        if stale_check:
            next_stale_check = time.monotonic() + study._storage.get_heartbeat_interval()
        trial, busy = _next_trial(study, search, target, None if trials is not None else search.trials, stale_check)
        if trial is None:
            if not busy:
                return
            time.sleep(poll)  # other workers' trials still run; one whose worker died is retried here
            continue
        state, duplicate = run_trial(search, study, trial, target, orphan_timeout=orphan_timeout, poll=poll,
                                     fabrikant=fabrikant)
        counts["trials"] += 1
        counts[state] += 1
        counts["duplicates"] += duplicate


@contextlib.contextmanager
def _as_in_optimize(study):
    """Run as inside ``study.optimize``, where a sampler may call ``study.stop()``.

    The grid sampler does, once every point of its grid was started; outside
    ``optimize`` Optuna raises there, in the ``tell`` of a finished trial.  The
    request is accepted and left alone: the search's budget (capped at the
    grid's size, counting a retried trial once) decides when trials end.
    """
    local = study._thread_local
    before = local.in_optimize_loop
    local.in_optimize_loop = True
    try:
        yield
    finally:
        local.in_optimize_loop = before


def _budget(study, target) -> tuple[int, int, int]:
    """``(used, waiting, running)`` trials of the study, counted in one query.

    Used: every trial but those failed with their worker (dead or
    interrupted, told without an ``error``): they were queued again, and
    their retry counts instead.  Asked on the table layer's connection,
    which holds the study lock already: a connection of Optuna's pool would
    be checked out, pinged and rolled back for this one statement.
    """
    from optuna.trial import TrialState

    quote = target.connection.adapter.quote_identifier
    trials, attrs = (f"{quote(target.schema)}.{quote(name)}" for name in ("trials", "trial_user_attributes"))

    def count(condition):
        return f"COALESCE(SUM(CASE WHEN {condition} THEN 1 ELSE 0 END), 0)"

    # the states as literals: PostgreSQL stores them in an enum type that a text parameter does not compare with
    fail, waiting, running = (f"'{member.name}'" for member in (TrialState.FAIL, TrialState.WAITING, TrialState.RUNNING))
    state = f"t.{quote('state')}"
    failed_by_error = (f"EXISTS (SELECT 1 FROM {attrs} a WHERE a.{quote('trial_id')} = t.{quote('trial_id')} "
                       f"AND a.{quote('key')} = 'error')")
    row = target.connection.query(
        f"SELECT {count(f'{state} <> {fail} OR {failed_by_error}')}, {count(f'{state} = {waiting}')}, "
        f"{count(f'{state} = {running}')} FROM {trials} t WHERE t.{quote('study_id')} = %s",
        args=(study._study_id,),
    ).fetchone()
    return tuple(int(value) for value in row)


def _next_trial(study, search, target, limit, stale_check=True):
    """Start the next trial under the study's lock; ``(None, busy)`` when the budget is used.

    ``stale_check``: first fail (and queue again) the trials whose worker
    stopped sending heartbeats; once per heartbeat interval is enough.
    """
    from optuna.exceptions import ExperimentalWarning
    from optuna.storages import fail_stale_trials

    with study_lock(target.connection, f"{target.schema}: study {search.name}"), warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)  # Optuna's heartbeats are experimental
        if stale_check:
            fail_stale_trials(study)
        if limit is not None:
            used, waiting, running = _budget(study, target)
            if used >= limit and not waiting:
                return None, running > 0
        return study.ask(search.distributions()), True


class _Heartbeat:
    """Records the trial's heartbeat at once and every interval while it runs, so a dead worker's trial is noticed.

    The first beat is written by the thread too, while the trial's configs
    are inserted, so it costs the trial no time.
    """

    def __init__(self, study, trial):
        self.storage, self.trial_id = study._storage, trial._trial_id
        self.interval = self.storage.get_heartbeat_interval() or 60
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"heartbeat of trial {trial.number}", daemon=True)
        self.thread.start()

    def _run(self):
        while True:
            try:
                self.storage.record_heartbeat(self.trial_id)
            except Exception as error:  # a lost connection must not kill the training; the next beat retries
                log.warning("heartbeat of trial %s failed: %s", self.trial_id, error)
            if self.stop.wait(self.interval):
                self.storage.remove_session()  # this thread's session: each thread closes its own
                return

    def close(self):
        self.stop.set()
        self.thread.join()


def run_trial(search, study, trial, target, *, orphan_timeout: float = 300.0, poll: float = 1.0, fabrikant=None):
    """Train and tell one trial; returns ``(state, duplicate)`` with state ``complete``, ``pruned`` or ``failed``."""
    from optuna.trial import TrialState

    heartbeat = _Heartbeat(study, trial)
    # a retried trial plans its steps under the first attempt's name, so it is not taken for a duplicate of it
    first = trial._cached_frozen_trial.system_attrs.get("failed_trial", trial.number)
    planner = f"search {search.name}: trial {first}"
    label = f"search {search.name}: trial {trial.number}"
    duplicate = False
    try:
        experiment = search.experiment_for(search.values_of(trial.params))
        steps, last = target.keys(experiment)
        wanted = {target.identity(key) for key in last}
        insertion = target.check(experiment)
        # a step with a config new to the database cannot be trained yet: only the others are looked up
        stored = target.done([key for key in steps if not insertion.has_new_config(key)])
        finished = {target.identity(row) for row in stored}
        done = [row for row in stored if target.identity(row) in wanted]
        if len(done) == len(last):
            outcome, message, duplicate = "done", done, True
        else:
            target.insert(insertion, experiment, planned_by=planner, fabrikant=fabrikant,
                          queue=[key for key in steps if target.identity(key) not in finished])
            outcome, message = _train(search, trial, target, steps, last, finished, orphan_timeout, poll)
            rows = [row for row in message if target.identity(row) in wanted] if outcome == "done" else (
                target.planned_by(last))
            # trained by this trial unless another trial planned its last step first
            duplicate = bool({row["planned_by"] for row in rows if "planned_by" in row} - {planner})
        if duplicate:
            trial.set_user_attr("duplicate", True)
        if outcome == "done":
            value = _objective(search, target, [row for row in message if target.identity(row) in wanted])
            _tell(study, trial, value)
            log.info("%s: %s = %.6g%s", label, search.objective, value, " (duplicate)" if duplicate else "")
            return "complete", duplicate
        if outcome == "pruned":
            trial.set_user_attr("pruned", message)
            _tell(study, trial, state=TrialState.PRUNED)
            log.info("%s pruned: %s", label, message)
            return "pruned", duplicate
        raise _TrialFailed(message)
    except (_TrialFailed, NNTransferError) as error:
        trial.set_user_attr("error", str(error)[:1000])
        _tell(study, trial, state=TrialState.FAIL)
        log.warning("%s failed: %s", label, error)
        if isinstance(error, ObjectiveNotMeasured):
            raise  # every trial would fail the same way: stop the search
        return "failed", duplicate
    except BaseException as error:
        # interrupted (Ctrl-C, SIGTERM) or a failure of the machinery itself: the trial is queued again for
        # the next worker, whose training resumes from the job's checkpoint
        _give_back(study, trial, f"{type(error).__name__}: {error}")
        raise
    finally:
        heartbeat.close()


def _tell(study, trial, value=None, state=None) -> None:
    """``study.tell`` as ``study.optimize`` tells a trial: without reading the finished trial back (six queries)."""
    from optuna.study._tell import _tell_with_warning

    _tell_with_warning(study, trial, value, state)


class _TrialFailed(Exception):
    """A trial's training failed (the message says where); the trial is told as failed."""


class ObjectiveNotMeasured(ConfigError):
    """The trained step's output does not record the search's objective."""


def _give_back(study, trial, reason: str) -> None:
    from optuna.storages import RetryHeartbeatStaleTrialCallback
    from optuna.trial import TrialState

    try:
        trial.set_user_attr("interrupted", reason[:1000])
        _tell(study, trial, state=TrialState.FAIL)
        RetryHeartbeatStaleTrialCallback()(study, study._storage.get_trial(trial._trial_id))
    except Exception as error:  # the database may be what failed; the heartbeat then expires and retries it
        log.warning("could not queue trial %s again (%s); it is retried when its heartbeat expires", trial.number, error)
        return
    log.warning("trial %s of search %s stopped (%s): queued again, its training resumes from its last checkpoint",
                trial.number, study.study_name, reason.splitlines()[0][:200] if reason else "interrupted")


def _train(search, trial, target, steps, last, finished, orphan_timeout, poll):
    """Train the trial's steps: the first seed's chain first (its last step is watched for pruning), then the rest.

    ``finished``: the identities of the steps trained already, kept up to date.
    """
    watched = target.identity(last[0])
    first_chain = [key for key in steps if key.get("seed", last[0]["seed"]) == last[0]["seed"]]
    phases = [first_chain] if len(first_chain) == len(steps) else [first_chain, steps]
    target.table.epoch_observer = _observer(search, trial, target, watched)
    target.table.heartbeat_interval = min(30.0, max(0.5, orphan_timeout / 4))  # renew held jobs within the timeout
    try:
        for phase in phases:
            outcome = _train_phase(target, phase, watched, finished, orphan_timeout, poll)
            if outcome[0] != "done":
                return outcome
        return outcome  # ("done", the trained rows of the last phase, which holds every last step)
    finally:
        target.table.epoch_observer = None


def _train_phase(target, keys, watched, finished, orphan_timeout, poll):
    wanted = {target.identity(key) for key in keys}
    while True:
        result = target.train([key for key in keys if target.identity(key) not in finished])
        errors = [(key, error) for key, error in result["error_list"] if not isinstance(error, JobTakenOver)]
        if errors:  # a job another worker took over is that worker's now: wait for its result
            key, error = errors[0]
            return "error", f"training {_describe(key)} failed: {type(error).__name__}: {error}"
        rows = target.done(keys)
        finished.update(target.identity(row) for row in rows)
        if finished >= wanted:
            return "done", rows
        jobs = target.jobs(keys)
        status, message = jobs.get(watched, (None, ""))
        if status == "ignore" and message.startswith(PRUNED):
            return "pruned", message
        failed = [(k, m) for k, (s, m) in jobs.items() if s == "error"]
        if failed:
            return "error", f"training {_describe(dict(failed[0][0]))} failed: {failed[0][1]}"
        blocked = [(k, m) for k, (s, m) in jobs.items() if s == "ignore" and k not in finished]
        if blocked:
            return "error", f"{_describe(dict(blocked[0][0]))} is not trained: its job is ignored ({blocked[0][1]})"
        if not result["success_count"]:
            interrupt.raise_if_requested("the trial's training was not started")
            target.take_over(keys, orphan_timeout)  # another worker trains what this trial needs; wait for it
            time.sleep(poll)


def _describe(key) -> str:
    """A step in short for messages: its transfer step, trainer and seed."""
    key = dict(key)
    step = f"step {key['transfer_step']} " if "transfer_step" in key else ""
    return f"{step}({key['trainer_fn'].rsplit('.', 1)[-1]} {key['trainer_hash'][:8]}, seed {key['seed']})"


def _observer(search, trial, target, watched):
    """The ``epoch_observer`` that reports the watched training's per-epoch objective and prunes."""
    metric = search.epoch_metric

    def observe(key, epoch=None, metrics=None, **_):
        if metric is None or epoch is None or not metrics or target.identity(key) != watched:
            return
        value = metrics.get(metric)
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            return
        trial.report(float(value), step=int(epoch))
        if trial.should_prune():
            raise TrainingPruned(f"epoch {epoch}: {metric} = {value:.4g} (trial {trial.number} of search {search.name!r})")

    return observe


def _objective(search, target, rows) -> float:
    """The trial's value: the objective of each seed's last step, averaged."""
    values = []
    for row in rows:
        if search.objective == "score":
            value = row.get("score")
        else:
            value = _metric(search.objective, target.output(row), row)
        if value is None or not math.isfinite(float(value)):
            raise _TrialFailed(f"the objective {search.objective!r} of {target.identity_key(row)} is {value!r}, "
                               "not a finite number")
        values.append(float(value))
    return sum(values) / len(values)


def _metric(name: str, output, row: dict):
    """``name`` from a trainer's output: its ``final`` value, else the last in its ``history``, else a top-level number."""
    output = output if isinstance(output, dict) else {}
    final = output.get("final") if isinstance(output.get("final"), dict) else {}
    history = output.get("history") if isinstance(output.get("history"), dict) else {}
    if final.get(name) is not None:
        return final[name]
    measured = [v for v in history.get(name) or [] if v is not None] if isinstance(history.get(name), list) else []
    if measured:
        return measured[-1]
    if isinstance(output.get(name), (int, float)) and not isinstance(output.get(name), bool):
        return output[name]
    numbers = [k for k, v in output.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    known = sorted(set(final) | set(history) | set(numbers))
    raise ObjectiveNotMeasured(
        f"the objective {name!r} is not measured by {row.get('trainer_fn')}: its output records "
        f"{', '.join(known) or 'no metric'} (in 'final', 'history' or as a number); declare the search with one of "
        "these or with objective='score'."
    )
