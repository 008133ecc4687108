"""TrainedModel: one row per trained (dataset, model, trainer, seed).

Training runs in DataJoint's three-part make: ``make_fetch`` reads the three
configs, ``make_compute`` builds and trains with no transaction open (training
may take hours; a transaction held that long blocks other workers and dies
with the connection) and writes the artifacts under names unique to the
attempt, and ``make_insert`` writes the rows in one short transaction.
State_dicts and transfer data go to the object store (:mod:`.artifacts`); the
row keeps score, the trainer's JSON output and the artifact references.

Exactly one result per key, whatever the takeovers: a worker that holds a
reserved job renews it from a background thread (:class:`~.jobs.Heartbeat`)
while it trains, and learns there when another worker took the job over; the
insert phase checks, inside its transaction and with the job row locked,
that this worker still holds the job and that no other attempt stored the
key, or raises :class:`~nntransfer.errors.JobTakenOver`.  A failed attempt
removes the files it wrote and nothing else.  Checkpoint rows go in the
result's transaction, their files after the commit (see :meth:`TrainingMixin.populate`).

``TrainedModelBase`` is a template: declare your own table from it in your own
schema, as nnfabrik's tutorial does::

    @schema
    class TrainedModel(TrainedModelBase):
        table_comment = "Trained models"
"""

from __future__ import annotations

import contextlib
import functools
import logging
import signal
from typing import Any

from ..builder import get_data, get_model, get_trainer
from ..configs.functions import split_table_options
from ..db import import_datajoint
from ..serialization import (
    output_from_json,
    output_to_json,
    score_to_float,
    state_dict_from_bytes,
    state_dict_to_bytes,
    transfer_data_from_bytes,
    transfer_data_to_bytes,
)
from ..errors import DatabaseError, JobTakenOver, TrainingPruned
from ..resolve import check_all_allowed, stored_names
from ..progress_display import EpochDisplay
from ..trainer import interrupt
from . import checkpoint_protocol
from .artifacts import ArtifactStore, artifact_definition, new_attempt
from . import live, outage_checkpoints
from .conflicts import is_conflict, not_logged as conflict_not_logged, pause
from .interruptions import GivingBack, give_back, not_logged as stop_not_logged
from .reconnect import is_connection_error, unreachable_in, wait_for_database
from .jobs import Heartbeat, WorkerJobs, WorkerJobsDescriptor
from .restrictions import SafeRestriction
from .pruning import not_logged_as_error, record_pruned
from .fabrik import Dataset, Fabrikant, Model, Seed, Trainer, schema

dj = import_datajoint()
log = logging.getLogger(__name__)


class TrainingCallback:
    """The ``cb`` that table-driven training hands to trainer functions.

    nnfabrik's contract only says the trainer may call it (with or without
    arguments); called with nnfabrik's checkpoint protocol (``state={"action":
    "save" | "last" | "best", ...}``) it saves and restores checkpoints in the
    database (:mod:`.checkpoint_protocol`).  It carries ``checkpoint_store`` (the database checkpoints of
    this key, so any worker can resume the training).  The job's reservation
    is renewed by the worker's heartbeat thread, not by these calls, so a
    long epoch or a trainer that never calls ``cb`` is not taken for dead;
    when the heartbeat found the job taken over by another worker, the next
    call raises :class:`~nntransfer.errors.JobTakenOver`, which stops the
    training.  Each epoch's ``epoch`` and ``metrics`` go to the live-progress
    table (``live``, see :mod:`.live`) and to the display (``display``, see
    :mod:`nntransfer.progress_display`).  ``observer``, when
    given, is called as ``observer(key, **info)`` with what the trainer
    reported (a search reports each epoch's objective to its trial there and
    may stop the training with :class:`~nntransfer.errors.TrainingPruned`).

    After Ctrl-C or SIGTERM (see :mod:`nntransfer.trainer.interrupt`) a call
    raises :class:`~nntransfer.trainer.interrupt.Interrupted`, so trainers
    that do not watch for the request themselves stop at their next epoch;
    not after the last epoch (``epochs``, from the trainer config), where
    only the final evaluation and the store are left.
    """

    def __init__(self, key: dict, checkpoint_store=None, heartbeat=None, observer=None, epochs=None, live=None,
                 display=None):
        self.key = key
        self.checkpoint_store = checkpoint_store
        self.heartbeat = heartbeat
        self.observer = observer
        self.epochs = epochs
        self.live = live
        self.display = display

    def __call__(self, *args, **info):
        if info:
            log.debug("training %s: %s", self.key, info)
        if self.heartbeat is not None:
            self.heartbeat.check()
        if isinstance(info.get("state"), dict) and self.checkpoint_store is not None:
            # nnfabrik's checkpoint protocol: cb(uid=..., epoch=..., model=..., state={"action": ...}),
            # answered before a stop request is: the epoch just finished is saved, so a resumed run goes on after it
            checkpoint_protocol.answer(self.checkpoint_store, info.get("epoch"), info.get("model"), info["state"])
        if interrupt.requested() and (self.epochs is None or info.get("epoch") != self.epochs):
            interrupt.raise_if_requested(f"training stopped after epoch {info.get('epoch', '?')}")
        if "epoch" in info and "state" not in info:
            if self.live is not None:
                self.live.epoch_done(info["epoch"], info.get("metrics"))
            if self.display is not None:
                self.display.update(info["epoch"], info.get("metrics"))
        if self.observer is not None:
            self.observer(self.key, **info)


@functools.lru_cache(maxsize=None)
def _store(name: str) -> ArtifactStore:
    return ArtifactStore(name)


def artifact_store() -> ArtifactStore:
    return _store(ArtifactStore.default().name)


def _artifact_part(name: str, artifact: str, comment: str, what: str) -> type:
    return type(
        name,
        (SafeRestriction, dj.Part),
        {
            "definition": f"# {comment}\n-> master\n---\n" + artifact_definition(artifact, what),
            "__doc__": f"{comment[0].upper()}{comment[1:]}, stored in the object store.",
        },
    )


def _storage_parts() -> dict[str, type]:
    """Fresh Part classes for one master (a Part class can belong to one master only)."""
    return {
        "ModelStorage": _artifact_part("ModelStorage", "model_state", "the trained state_dict",
                                       "torch.save of the state_dict"),
        "TransferData": _artifact_part("TransferData", "transfer_data", "data generated for the next transfer step",
                                       "npz of {split: {name: array}}"),
    }


def _default_label(key: dict) -> str:
    parts = [f"transfer step {key['transfer_step']}"] if "transfer_step" in key else []
    parts.append(f"seed {key.get('seed')}")
    return ", ".join(parts)


def _with_source(transfer_data, key: dict):
    """Each split's transfer data with the generating step's dataset recorded beside the rows.

    The data layer records the split and the sample order (see
    :mod:`nntransfer.transfer.provenance`); the dataset function and config
    hash are known here, so a receiving step and the lineage can name them.
    """
    import numpy as np

    from ..transfer.provenance import RECORD_PREFIX  # here: training has torch loaded, reading need not

    if not isinstance(transfer_data, dict):
        return transfer_data
    source = {f"{RECORD_PREFIX}{name}": np.asarray(key[name]) for name in ("dataset_fn", "dataset_hash")}
    return {split: {**arrays, **source} if isinstance(arrays, dict) else arrays
            for split, arrays in transfer_data.items()}


def _split_transfer_data(output):
    """``(output, transfer_data)``: a dict output's ``transfer_data`` is taken out; any other output is kept whole.

    nnfabrik's trainers return tuples, lists and arrays as ``output`` too; they
    are stored as given.  No output (None) is stored as ``{}``.
    """
    if output is None:
        return {}, None
    if isinstance(output, dict) and "transfer_data" in output:
        output = dict(output)
        return output, output.pop("transfer_data")
    return output, None


class TrainingMixin(SafeRestriction):
    """Three-part make and model loading, shared by the trained-model tables.

    A table using it defines ``dataset_table``, ``model_table``,
    ``trainer_table`` and ``seed_table`` and the parts ``ModelStorage`` and
    ``TransferData``.  Hooks for subclasses: ``prepare_training`` (what the
    step receives from earlier steps) and ``extra_row_fields``.
    """

    keep_checkpoints = False
    """Keep every finished training's checkpoints (removed by default); see :meth:`keeps_checkpoints`."""
    heartbeat_interval = 30.0
    """Seconds between renewals of a held job (the runner sets a quarter of its orphan timeout)."""
    jobs = WorkerJobsDescriptor()
    _stored_checkpoints = ()
    _committed = ()  # keys whose result this populate committed
    dataset_table = Dataset
    model_table = Model
    trainer_table = Trainer
    seed_table = Seed
    user_table = Fabrikant

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for name, part in _storage_parts().items():
            if name not in cls.__dict__:
                setattr(cls, name, part)

    # -- three-part make -------------------------------------------------
    def make_fetch(self, key: dict):
        with stored_names():  # names read from rows must lie in allowed packages (see nntransfer.resolve)
            dataset, (model_fn, model_config, model_comment), trainer = (
                table().get_entry(key) for table in (self.dataset_table, self.model_table, self.trainer_table)
            )
            check_all_allowed({"dataset_fn": dataset[0], "model_fn": model_fn, "trainer_fn": trainer[0]})
            model_config = split_table_options(model_fn, "model", model_config)[0]
        return dataset, (model_fn, model_config, model_comment), trainer, self.fetch_inputs(key)

    def make_compute(self, key: dict, dataset, model, trainer, inputs):
        (dataset_fn, dataset_config, dataset_comment) = dataset
        (model_fn, model_config, model_comment) = model
        (trainer_fn, trainer_config, trainer_comment) = trainer
        comment = ". ".join(c for c in (dataset_comment, model_comment, trainer_comment) if c)[:768]
        seed = key["seed"]
        with stored_names(), self._heartbeat(key) as heartbeat:
            dataset_config, receive = self.prepare_training(key, dataset_config, inputs)
            dataloaders = get_data(dataset_fn, dataset_config, seed)
            net = get_model(model_fn, model_config, dataloaders, seed)
            extra = receive(net) if receive else {}
            train = get_trainer(trainer_fn, trainer_config)
            interrupt.raise_if_requested("the training did not start")
            cb = self.callback_for(key, heartbeat, trainer_config=trainer_config)
            try:
                score, output, model_state = train(net, dataloaders, seed, uid=dict(key), cb=cb)
            except TrainingPruned as pruned:
                self._pruned = pruned
                raise
            finally:
                if getattr(cb, "display", None) is not None:
                    cb.display.close()
            output, transfer_data = _split_transfer_data(output)
            transfer_data = _with_source(transfer_data, key)
            output = output_to_json(output)
            artifacts = self._write_artifacts(
                key, state_dict_to_bytes(model_state),
                transfer_data_to_bytes(transfer_data) if transfer_data is not None else None,
            )
            # a database that went away while this trained must be back before the result goes in
            wait_for_database(self.connection, what="storing the result")
        return comment, score_to_float(score), output, artifacts, extra

    def make_insert(self, key: dict, comment: str, score, output, artifacts: dict, extra: dict):
        """Store one result, in the transaction DataJoint opened around this call.

        Refuses with :class:`~nntransfer.errors.JobTakenOver` when another
        worker holds the job now or stored the key first.  The training's
        checkpoint rows are deleted in the same transaction; their files after
        the commit.  On any failure the files of this attempt, and only those,
        are removed.
        """
        try:
            self._check_holds(key)
            if self & key:
                raise JobTakenOver(f"{key} was stored by another attempt meanwhile; this attempt's result is discarded.")
            self.insert1({
                **key,
                "comment": comment,
                "score": score,
                "output": output,
                "fabrikant_name": self.user_table.get_current_user(),
                **self.extra_row_fields(key, extra),
            })
            self.ModelStorage.insert1({**key, **artifacts["model_state"]})
            if "transfer_data" in artifacts:
                self.TransferData.insert1({**key, **artifacts["transfer_data"]})
            self.on_stored(key)
            stale = [] if self.keeps_checkpoints(key) else self.checkpoint_store(key).detach()
        except BaseException:
            self._remove_artifacts(key, artifacts)
            raise
        self._stored_checkpoints = [*self._stored_checkpoints, (dict(key), stale)]

    def populate(self, *restrictions, **kwargs):
        """DataJoint's populate; then the checkpoint files of the trainings it stored are deleted.

        Deleted only now, after their result's transaction committed: a
        commit that fails leaves checkpoint rows and files together, so the
        next attempt resumes from them.

        Ctrl-C and SIGTERM stop the training in progress cleanly and give its
        job back (see :mod:`.interruptions`); :class:`~nntransfer.trainer.interrupt.Interrupted` ends the call.
        """
        try:
            with interrupt.handling_signals():
                return super().populate(*restrictions, **kwargs)
        except SystemExit as stop:  # DataJoint's own SIGTERM handler, active between two keys: nothing was held
            if str(stop) != "SIGTERM received":
                raise
            raise interrupt.Interrupted("SIGTERM received between two jobs", signal.SIGTERM) from None
        finally:
            stored, self._stored_checkpoints = self._stored_checkpoints, ()
            committed, self._committed = self._committed, ()
            for key, paths in stored:
                here = key in committed or bool(self & key)  # only a key whose commit failed is looked up
                if paths and here:
                    self.checkpoint_store(key).remove_files(paths)
                outage_checkpoints.discard(self, key)
                if here:
                    live.remove(self, key)

    def _check_holds(self, key: dict) -> None:
        """In a transaction: raise JobTakenOver if this process reserved ``key`` but no longer holds it (row locked)."""
        jobs = self.__dict__.get("_jobs")
        if isinstance(jobs, WorkerJobs) and jobs.holder(key) is not None and not jobs.lock_held(key):
            raise JobTakenOver(
                f"the job {key} was taken over by another worker while this one trained it; this result is discarded."
            )

    def _heartbeat(self, key: dict):
        """A :class:`~.jobs.Heartbeat` for ``key`` when this process holds its job, else a context giving None."""
        jobs = self.__dict__.get("_jobs")
        if isinstance(jobs, WorkerJobs) and jobs.holder(key) is not None:
            return Heartbeat(jobs, key, self.heartbeat_interval)
        return contextlib.nullcontext()

    def _write_artifacts(self, key: dict, model_state: bytes, transfer_data: bytes | None) -> dict:
        """Write this attempt's artifacts under names of their own; return their references by name."""
        store = artifact_store()
        folder = store.key_folder(self, key)
        attempt = new_attempt()
        refs = {}
        try:
            refs["model_state"] = store.put("model_state", f"{folder}/model_state-{attempt}.pt", model_state)
            if transfer_data is not None:
                refs["transfer_data"] = store.put("transfer_data", f"{folder}/transfer_data-{attempt}.npz",
                                                  transfer_data)
        except BaseException:
            self._remove_artifacts(key, refs)
            raise
        return refs

    def _remove_artifacts(self, key: dict, refs: dict) -> None:
        store = artifact_store()
        for name, ref in refs.items():
            store.remove(ref[name], store.key_folder(self, key))

    def read_artifact(self, row: dict, name: str) -> bytes:
        """The bytes of artifact ``name`` that ``row`` (a storage row of this table) references, path checked."""
        store = artifact_store()
        return store.get(row, name, store.key_folder(self, row))

    # -- hooks for transfer tables ----------------------------------------
    def fetch_inputs(self, key: dict) -> Any:
        """What this entry receives from earlier steps (nothing for plain training)."""
        return None

    def inputs_for_loading(self, key: dict) -> Any:
        """What :meth:`load_model` needs from earlier steps to rebuild the dataset (as :meth:`fetch_inputs`)."""
        return self.fetch_inputs(key)

    def prepare_training(self, key: dict, dataset_config: dict, inputs: Any):
        """Return the dataset config to build with and a function applied to the new model."""
        return dataset_config, None

    def extra_row_fields(self, key: dict, extra: dict) -> dict:
        return {}

    def on_stored(self, key: dict) -> None:
        """Called in the transaction that stores ``key`` (transfer tables flag the next steps ready)."""

    def keeps_checkpoints(self, key: dict) -> bool:
        """Whether the checkpoints of ``key``'s training stay once its result is stored.

        Yes when the table sets ``keep_checkpoints``, or, as nnfabrik's
        checkpoint templates decided it, when the trainer config of ``key``
        holds a true ``keep_checkpoints`` (the config reaches the trainer
        function as given, so a trainer taking ``**config`` sees it too).
        """
        if self.keep_checkpoints:
            return True
        config = self.trainer_table().get_config(key)[1]
        return isinstance(config, dict) and bool(config.get("keep_checkpoints"))

    def checkpoint_store(self, key: dict):
        """The database checkpoints of the training of ``key``."""
        from .checkpoints import DatabaseCheckpointStore

        return DatabaseCheckpointStore(self, key)

    epoch_observer = None
    """Called by the training callback as ``epoch_observer(key, epoch=..., metrics=...)``; set on an instance."""

    step_label = None
    """Called as ``step_label(key)`` for what the progress display calls a training; the runner sets it."""

    def _label(self, key: dict) -> str:
        return self.step_label(key) if self.step_label is not None else _default_label(key)

    def callback_for(self, key: dict, heartbeat=None, trainer_config=None) -> TrainingCallback:
        store = self.checkpoint_store(key)
        if heartbeat is not None:  # a checkpoint of a job taken over would outlive the other worker's result
            store.holder_check = functools.partial(self._check_holds, dict(key))
        store = outage_checkpoints.OutageProofCheckpoints(store, outage_checkpoints.local_folder(self, key),
                                                          self.connection)
        config = trainer_config or {}
        epochs = config.get("epochs") if isinstance(config.get("epochs"), int) else None
        label = self._label(key)
        score_metric = config.get("score_metric") if isinstance(config.get("score_metric"), str) else None
        return TrainingCallback(dict(key), store, heartbeat, observer=self.epoch_observer, epochs=epochs,
                                live=live.LiveWriter(self, key, epochs), display=EpochDisplay(label, epochs, score_metric))

    def _populate1(self, key, jobs, *args, **kwargs):
        """DataJoint's populate of one key, with a pruned training recorded as pruned (see :mod:`.pruning`).

        A stop asked for by a signal starts no further key, and a training it
        stopped gives its job back (see :mod:`.interruptions`); the signal
        handlers are installed again here because DataJoint's populate puts
        its own SIGTERM handler in place.
        """
        interrupt.raise_if_requested("no further job was started")
        self._pruned = None
        try:
            with interrupt.handling_signals(), not_logged_as_error(self), stop_not_logged(), conflict_not_logged():
                status = self._populate1_through_outages(key, jobs, *args, **kwargs)
        except TrainingPruned:
            if self._pruned is None:
                raise
        if self._pruned is None:
            if status is True:
                self._committed = (*self._committed, dict(key))
            return status
        record_pruned(self, key, str(self._pruned))
        return False

    OUTAGE_ATTEMPTS = 3
    """Attempts at one key when the database connection is lost during them (see :mod:`.reconnect`)."""

    CONFLICT_ATTEMPTS = 5
    """Attempts at one key when the server rolls its result back to break a deadlock (see :mod:`.conflicts`)."""

    def _populate1_through_outages(self, key, jobs, *args, **kwargs):
        """DataJoint's populate of one key; after a lost connection or a deadlock, try the key again.

        After a lost connection it waits for the database first.  The job is
        given back rather than failed (see :mod:`.interruptions`), and the next
        attempt resumes from the training's last checkpoint (in the database,
        or kept locally while it was away), which for a training that had
        finished leaves only its final evaluation to redo.  Past the reconnect
        bound :class:`~nntransfer.errors.DatabaseUnreachable` ends the populate;
        a key rolled back in a deadlock ``CONFLICT_ATTEMPTS`` times fails as
        any error does.
        """
        outages = conflicts = 0
        while True:
            retry_conflict = conflicts < self.CONFLICT_ATTEMPTS - 1
            giving = GivingBack(jobs, self._label(key), conflicts_given_back=retry_conflict) if jobs is not None else None
            try:
                status = super()._populate1(key, giving, *args, **kwargs)
            except Exception as error:
                if not (is_connection_error(error) or unreachable_in(error) is not None
                        or (retry_conflict and is_conflict(error))):
                    raise
                lost = error
            else:
                if isinstance(status, tuple) and interrupt.requested():  # a stop that suppress_errors swallowed
                    if giving is not None and isinstance(giving.given_back, interrupt.Interrupted):
                        raise giving.given_back
                    interrupt.raise_if_requested("the job was given back")
                lost = giving.given_back if giving is not None and not interrupt.requested() else None
                if lost is None or not (is_connection_error(lost) or unreachable_in(lost) is not None
                                        or is_conflict(lost)):
                    return status
            unreachable = unreachable_in(lost)
            if unreachable is not None:
                raise unreachable from None
            if is_conflict(lost):
                conflicts += 1
                log.warning("the database rolled back the result of %s to break a deadlock with another worker; "
                            "trying it again (it resumes from its last checkpoint)", self._label(key))
                pause(conflicts)
                continue
            wait_for_database(self.connection, what="a training's result or its job")
            if jobs is not None:
                give_back(jobs, key, self._label(key))
            outages += 1
            if outages == self.OUTAGE_ATTEMPTS:
                raise DatabaseError(f"the database connection was lost {self.OUTAGE_ATTEMPTS} times while "
                                    f"{self._label(key)} was stored; check the database server, then run the worker "
                                    "again.")
            log.warning("the database connection was lost during %s; trying it again (it resumes from its last "
                        "checkpoint)", self._label(key))

    # -- reading results ---------------------------------------------------
    def _repr_html_(self):
        """Jupyter's view: step, seed, score and comment first, then the functions and hashes (see :mod:`.preview`)."""
        from .preview import preview_html

        return preview_html(self)

    def fetch_state_dict(self, key: dict | None = None) -> dict:
        row = (self.ModelStorage & (self & (key or {})).proj()).fetch1()
        return state_dict_from_bytes(self.read_artifact(row, "model_state"))

    def fetch_transfer_data(self, key: dict | None = None) -> dict | None:
        rows = (self.TransferData & (self & (key or {})).proj()).to_dicts()
        if not rows:
            return None
        return transfer_data_from_bytes(self.read_artifact(rows[0], "transfer_data"))

    def fetch_output(self, key: dict | None = None) -> dict:
        return output_from_json((self & (key or {})).fetch1("output"))

    def load_model(self, key=None, include_dataloader=True, include_trainer=False, include_state_dict=True, seed=None):
        """Rebuild one trained model (nnfabrik's signature).

        Returns ``(dataloaders, model)`` (plus the trainer when
        ``include_trainer``) or only the model when ``include_dataloader`` is
        False.  ``key`` must select exactly one row.
        """
        entry = (self & (key or {})).fetch1("KEY")
        seed = entry["seed"] if seed is None else seed
        with stored_names():  # names read from rows must lie in allowed packages (see nntransfer.resolve)
            dataset_fn, dataset_config = self.dataset_table().get_config(entry)
            model_fn, model_config = self.model_table().function_config(entry)
            dataset_config, _ = self.prepare_training(entry, dataset_config, self.inputs_for_loading(entry))
            dataloaders = get_data(dataset_fn, dataset_config, seed)
            model = get_model(model_fn, model_config, dataloaders, seed)
        if include_state_dict:
            model.load_state_dict(self.fetch_state_dict(entry))
        result = [dataloaders, model] if include_dataloader else [model]
        if include_trainer:
            result.append(self.trainer_table().get_trainer(entry))
        return tuple(result) if len(result) > 1 else result[0]


class TrainedModelBase(TrainingMixin, dj.Computed):
    """Template of a trained-model table; subclass it in your schema with ``@schema``."""

    table_comment = "trained models"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.definition = f"""
        # {cls.table_comment}
        -> self.model_table
        -> self.dataset_table
        -> self.trainer_table
        -> self.seed_table
        ---
        comment = "": varchar(768)      # the three entries' comments
        score = null: float64           # the trainer's score (null when not finite)
        output: json                    # the trainer's output, without transfer_data
        -> [nullable] self.user_table
        trainedmodel_ts = CURRENT_TIMESTAMP: datetime
        """


@schema
class TrainedModel(TrainedModelBase):
    table_comment = "trained models"
