"""Function resolution, settings and the CLI, without a database."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from nntransfer.builder import get_all_parts
from nntransfer.resolve import resolve_fn
from nntransfer.errors import DatabaseError, FunctionResolutionError
from nntransfer.settings import load_settings


def test_resolve_fn_imports_by_dotted_path():
    assert resolve_fn("os.path.join") is os.path.join
    assert resolve_fn(len) is len


@pytest.mark.parametrize(
    "path, message",
    [
        ("nope", "not a dotted path"),
        ("no_such_package.fn", "cannot be imported"),
        ("os.path.no_such_fn", "has no attribute 'no_such_fn'"),
        ("os.sep", "not a function"),
        ("__import__('os').system('true')", "cannot be imported"),
    ],
)
def test_resolve_fn_errors_say_what_failed(path, message):
    with pytest.raises(FunctionResolutionError, match=message):
        resolve_fn(path)


def test_get_all_parts_passes_the_seed_to_dataset_and_model():
    dataloaders, model, trainer = get_all_parts(
        "nntransfer.datasets.digits.digits_dataset_fn",
        {"batch_size": 32},
        "nntransfer.models.mlp.mlp_model_fn",
        {"hidden_sizes": [8]},
        seed=5,
        trainer_fn="nntransfer.trainer.standard.standard_trainer",
        trainer_config={"epochs": 1},
    )
    _, again = get_all_parts(
        "nntransfer.datasets.digits.digits_dataset_fn",
        {"batch_size": 32},
        "nntransfer.models.mlp.mlp_model_fn",
        {"hidden_sizes": [8]},
        seed=5,
    )
    for (name, a), b in zip(model.state_dict().items(), again.state_dict().values()):
        assert (a == b).all(), name
    assert trainer.keywords == {"epochs": 1}


def test_mode_follows_datajoint_settings(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NNTRANSFER_DB", raising=False)
    monkeypatch.delenv("DJ_HOST", raising=False)
    monkeypatch.setenv("NNTRANSFER_HOME", str(tmp_path / "home"))
    assert load_settings().mode == "embedded"
    assert load_settings().pgdata == tmp_path / "home" / "pgdata"
    monkeypatch.setenv("DJ_HOST", "db.example")
    assert load_settings().mode == "server"
    monkeypatch.delenv("DJ_HOST")
    (tmp_path / "datajoint.json").write_text("{}")
    assert load_settings().mode == "server"
    monkeypatch.setenv("NNTRANSFER_DB", "embedded")
    assert load_settings().mode == "embedded"
    monkeypatch.setenv("NNTRANSFER_DB", "cloud")
    with pytest.raises(DatabaseError, match="'cloud' is not a mode"):
        load_settings()


def test_unreachable_server_is_one_clear_error(tmp_path):
    env = dict(os.environ, DJ_HOST="127.0.0.1", DJ_PORT="9", DJ_USER="someone", DJ_PASS="secret-pw",
               DJ_BACKEND="postgresql", NNTRANSFER_HOME=str(tmp_path), NNTRANSFER_DB="server")
    code = "from nntransfer import tables; tables.activate('x')"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("nntransfer.errors.DatabaseUnreachable: Cannot connect to the postgresql server at 127.0.0.1:9")
    assert "secret-pw" not in result.stderr
    assert "Traceback" in result.stderr and result.stderr.count("Traceback") == 1  # no chained driver stack


def test_import_opens_no_connection_and_loads_no_heavy_module():
    code = (
        "import sys, nntransfer; "
        "print(sorted(m for m in ('datajoint', 'torch', 'psycopg2', 'pymysql') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_read_only_commands_load_the_table_layer_without_torch():
    """status, retry and results read the database; importing torch (seconds) is not their job."""
    code = (
        "import sys; from nntransfer import cli, runner, tables; "
        "from nntransfer.tables import membership, insertion; "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_cli_db_status_on_a_fresh_home(tmp_path):
    env = dict(os.environ, NNTRANSFER_HOME=str(tmp_path / "home"), NNTRANSFER_DB="embedded")
    result = subprocess.run([sys.executable, "-m", "nntransfer.cli", "db", "status"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 3
    assert "not running" in result.stdout


def test_the_local_artifact_store_is_added_to_the_users_stores_not_put_in_their_place(tmp_path, monkeypatch):
    from nntransfer.db import _configure_store, import_datajoint
    from nntransfer.settings import Settings

    dj = import_datajoint()
    theirs = {"protocol": "file", "location": str(tmp_path / "theirs")}
    monkeypatch.setitem(dj.config, "stores", {"raw_data": theirs})
    _configure_store(dj, Settings(mode="server", home=tmp_path, store="nntransfer"))
    assert dj.config.stores["raw_data"] == theirs
    assert dj.config.stores["nntransfer"] == {"protocol": "file", "location": str(tmp_path / "store")}


@pytest.mark.parametrize(
    "argv",
    [["worker", "r.py", "--jobs", "0"], ["worker", "r.py", "--threads", "-2"], ["run", "r.py", "--threads", "0"],
     ["demo", "--threads", "many"]],
)
def test_cli_refuses_counts_below_one_before_doing_anything(argv, capsys):
    from nntransfer.cli import build_parser

    with pytest.raises(SystemExit) as stop:
        build_parser().parse_args(argv)
    assert stop.value.code == 2
    assert "at least 1" in capsys.readouterr().err


@pytest.mark.parametrize("option", ["--poll", "--orphan-timeout"])
@pytest.mark.parametrize("value", ["-1", "nan", "soon"])
def test_cli_refuses_negative_waiting_times(option, value, capsys):
    from nntransfer.cli import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["worker", "r.py", option, value])
    assert "seconds >= 0" in capsys.readouterr().err
    assert getattr(build_parser().parse_args(["worker", "r.py", option, "0.5"]), option[2:].replace("-", "_")) == 0.5
