"""Faults with real processes, run once (on the embedded server): takeovers, a dead --jobs child, a second user.

The takeover logic is the same SQL on every backend (the kill storm of
``test_data_safety`` runs there); these tests stage the cases that a storm
hits only by chance.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from itest_faults import read_events

pytestmark = pytest.mark.skipif(bool(os.environ.get("NNTRANSFER_TEST_SERVER")),
                                reason="processes against the embedded server; the SQL is tested on every backend")

RECIPE = '''
from nntransfer.configs import Experiment, config_class_for

Digits = config_class_for("nntransfer.datasets.digits.digits_dataset_fn", "dataset")
Mlp = config_class_for("nntransfer.models.mlp.mlp_model_fn", "model")
Trainer = config_class_for("itest_faults.{trainer}", "trainer")
experiments = {{"faults": Experiment(Digits(batch_size=64), Mlp(hidden_sizes=[8]), Trainer({options}, log_file={log!r}),
                                    seed={seeds})}}
'''


def recipe(tmp_path, trainer, options, seeds=1):
    from nntransfer import runner

    log = tmp_path / "events.jsonl"
    path = tmp_path / f"faults_{trainer}.py"
    path.write_text(RECIPE.format(trainer=trainer, options=options, log=str(log), seeds=seeds))
    loaded = runner.load_recipe(str(path))
    runner.insert(loaded)
    return path, log, loaded


def worker(recipe_file, *args) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "nntransfer.cli", "worker", str(recipe_file), "--poll", "0.1", *args],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def wait_for(condition, process=None, timeout=90.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if process is not None and process.poll() is not None:
            raise AssertionError(process.communicate()[0])
        time.sleep(0.1)
    raise AssertionError("timed out")


def events_of(log, event):
    return [e for e in read_events(log) if e["event"] == event] if log.exists() else []


def clean(db):
    db.Checkpoint().delete_quick()
    db.TransferredTrainedModel.jobs.delete()


def stored_files(db, key):
    from nntransfer.tables.trained import artifact_store

    store = artifact_store()
    folder = Path(store.spec["location"]) / store.key_folder(db.TransferredTrainedModel(), key)
    return sorted(path.name for path in folder.iterdir()) if folder.exists() else []


def test_a_silent_worker_taken_over_by_mistake_leaves_exactly_one_loadable_result(db, tmp_path):
    """A takeover of a live worker (its trainer never calls cb and its heartbeat is slower than the other's
    timeout): both train, the worker that holds the job stores, the other one's result is discarded."""
    clean(db)
    go = tmp_path / "go"
    recipe_file, log, loaded = recipe(tmp_path, "silent_trainer", f"seconds=120.0, go_file={str(go)!r}")
    first = worker(recipe_file, "--orphan-timeout", "600")  # renews every 30 s: silent for the whole training
    wait_for(lambda: events_of(log, "start"), first)
    second = worker(recipe_file, "--orphan-timeout", "1")   # takes the job of a worker silent for 1 s
    wait_for(lambda: len(events_of(log, "start")) == 2, second)  # it did: both train now
    go.touch()  # both finish; the first to finish still holds no job
    out_first, _ = first.communicate(timeout=120)
    out_second, _ = second.communicate(timeout=120)
    assert first.returncode == 0 and second.returncode == 0, out_first + out_second
    assert {event["pid"] for event in events_of(log, "end")} == {first.pid, second.pid}
    assert "was taken over by another worker" in out_first
    (key,) = loaded.steps()
    row = (db.TransferredTrainedModel() & key).fetch1()
    assert row["output"]["pid"] == second.pid  # the holder's result; the other one was discarded
    db.TransferredTrainedModel().fetch_state_dict(key)  # loads and matches its checksum
    assert [name.split("-")[0] for name in stored_files(db, key)] == ["model_state"]  # the loser removed its file
    assert len(db.TransferredTrainedModel.jobs) == 0


def test_a_worker_whose_job_was_taken_over_is_told_and_stops_training(db, tmp_path):
    clean(db)
    stop = tmp_path / "stop"
    recipe_file, log, loaded = recipe(tmp_path, "epoch_trainer",
                                      f"epochs=1000, epoch_seconds=0.2, stop_file={str(stop)!r}")
    first = worker(recipe_file, "--orphan-timeout", "8")  # a heartbeat every 2 s
    wait_for(lambda: events_of(log, "epoch"), first)
    second = worker(recipe_file, "--orphan-timeout", "0.5")  # takes over between two of the first's heartbeats
    wait_for(lambda: len(events_of(log, "start")) == 2, second)

    def first_stopped():
        epochs = [e["time"] for e in events_of(log, "epoch") if e["pid"] == first.pid]
        return time.time() - max(epochs) > 5  # a heartbeat found the job gone, the next cb stopped the training

    wait_for(first_stopped, first)
    assert [e for e in events_of(log, "epoch") if e["pid"] == second.pid][-1]["time"] > time.time() - 2  # trains on
    stop.touch()
    out_second, _ = second.communicate(timeout=120)
    out_first, _ = first.communicate(timeout=120)
    assert first.returncode == 0 and second.returncode == 0, out_first + out_second
    assert [e["pid"] for e in events_of(log, "end")] == [second.pid]  # only the holder finished
    assert "was taken over" in out_first
    (key,) = loaded.steps()
    assert (db.TransferredTrainedModel() & key).fetch1("output")["pid"] == second.pid
    assert len(db.TransferredTrainedModel.jobs) == 0


def test_jobs_n_gives_a_dead_childs_job_back_and_ends(db, tmp_path):
    import psutil

    clean(db)
    recipe_file, log, loaded = recipe(tmp_path, "epoch_trainer", "epochs=4, epoch_seconds=0.4", seeds=[1, 2, 3])
    parent = worker(recipe_file, "--jobs", "2", "--orphan-timeout", "600")
    wait_for(lambda: events_of(log, "epoch"), parent)
    victim = events_of(log, "epoch")[0]["pid"]
    assert victim in {child.pid for child in psutil.Process(parent.pid).children(recursive=True)}
    os.kill(victim, signal.SIGKILL)
    out, _ = parent.communicate(timeout=120)  # with a 600 s orphan timeout, only the give-back lets it end
    assert parent.returncode == 1, out  # a worker died: the exit code says so
    assert "1 worker process(es) died" in out and "given back" in out
    assert len(db.TransferredTrainedModel() & loaded.steps()) == 3
    assert len(db.TransferredTrainedModel.jobs) == 0


def _owner_only(path: Path) -> bool:
    mode = path.stat().st_mode & 0o777
    return mode & 0o077 == 0 or (mode & 0o077 == 0o011 and path.is_dir())  # a folder others may only enter


PROBE = r"""
import os, socket, sys
path, store = sys.argv[1], sys.argv[2]
results = []
try:
    client = socket.socket(socket.AF_UNIX)
    client.connect(path)
    results.append("connected")
except OSError as error:
    results.append(f"refused {error.errno}")
for folder, _, names in os.walk(store):
    for name in names:
        try:
            open(os.path.join(folder, name), "rb").read(1)
            results.append("read " + name)
        except OSError:
            pass
print(";".join(results))
"""


def _system_python() -> str:
    """A Python the second user may run (this one may live in root's home)."""
    return next((path for path in ("/usr/bin/python3", "/usr/local/bin/python3") if os.access(path, os.X_OK)),
                "python3")


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("runuser"), reason="needs root to add a second local user")
def test_the_embedded_server_and_store_are_out_of_reach_of_a_second_local_user():
    import pwd

    from nntransfer.db import embedded

    user = "nnt_probe"
    try:
        pwd.getpwnam(user)
    except KeyError:
        subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", user], check=True)
    base = Path(tempfile.mkdtemp(prefix="nnt-perm-"))
    base.chmod(0o755)  # a folder others may enter, as a shared /home or /work is
    home = base / ("h" * (106 - len(str(base)) - 1))  # 106 characters: too long a path for a socket
    modes_before = {str(folder): folder.stat().st_mode for folder in [base, *base.parents]}
    env = {**os.environ, "NNTRANSFER_HOME": str(home), "NNTRANSFER_DB": "embedded"}
    for name in ("DJ_HOST", "DJ_PORT", "DJ_USER", "DJ_PASS", "DJ_BACKEND"):
        env.pop(name, None)
    try:
        code = ("from nntransfer import tables, insert; from nntransfer.configs import DatasetConfig; "
                "tables.activate('perm'); from nntransfer.tables.trained import artifact_store; "
                "artifact_store().put('x', 'perm/t/0/model_state.pt', b'secret')")
        subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, timeout=180)
        info = embedded.status(home / "pgdata")
        assert info.running
        socket_folder = Path(info.socket_dir)
        assert len(str(home)) == 106 and socket_folder != home / "pgdata"
        owner = socket_folder.stat()
        assert owner.st_mode & 0o777 == 0o700 and owner.st_uid == pwd.getpwnam(embedded.SERVER_USER).pw_uid
        server = Path(f"/proc/{info.pid}/status").read_text()
        gids = next(line for line in server.splitlines() if line.startswith("Gid:")).split()[1:]
        groups = next(line for line in server.splitlines() if line.startswith("Groups:")).split()[1:]
        assert "0" not in gids and groups == []  # neither group root nor any other group
        assert _owner_only(home) and _owner_only(home / "store") and _owner_only(home / "pgdata")
        assert all(_owner_only(path) for path in (home / "store").rglob("*"))
        probe = subprocess.run(["runuser", "-u", user, "--", _system_python(), "-c", PROBE,
                                str(socket_folder / f".s.PGSQL.{info.port}"), str(home / "store")],
                               capture_output=True, text=True, timeout=60)
        assert probe.stdout.strip() == "refused 13", probe.stdout + probe.stderr  # EACCES, nothing read
        assert {str(f): f.stat().st_mode for f in [base, *base.parents]} == modes_before  # no mode changed
    finally:
        embedded.stop(home / "pgdata")
        shutil.rmtree(base, ignore_errors=True)


def test_a_first_start_killed_halfway_is_recovered_by_the_next_start(embedded_home):
    """SIGKILL to the process group while initdb writes the new database, then start again."""
    from nntransfer.db import embedded

    env = {**os.environ, "NNTRANSFER_HOME": str(embedded_home), "NNTRANSFER_DB": "embedded"}
    starting = subprocess.Popen([sys.executable, "-m", "nntransfer.cli", "db", "start"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    wait_for(lambda: any(embedded_home.glob(".pgdata-init-*/base")), starting)
    os.killpg(starting.pid, signal.SIGKILL)
    starting.wait()
    assert not (embedded_home / "pgdata").exists()  # no half-made data folder
    try:
        again = subprocess.run([sys.executable, "-m", "nntransfer.cli", "db", "start"], env=env, capture_output=True,
                               text=True, timeout=180)
        assert again.returncode == 0, again.stdout + again.stderr
        assert embedded.status(embedded_home / "pgdata").running
        assert not list(embedded_home.glob(".pgdata-init-*"))
    finally:
        embedded.stop(embedded_home / "pgdata")
