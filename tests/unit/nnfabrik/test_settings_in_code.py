"""A host set in dj.config before activation is used, as every nnfabrik notebook sets it."""

import logging
import os
import subprocess
import sys

from nntransfer.settings import Settings, load_settings


def _clean_env(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJ_", "NNTRANSFER_"))}
    env.update(NNTRANSFER_HOME=str(tmp_path / "home"))
    return env


def test_a_host_set_in_code_is_connected_to_not_the_embedded_database(tmp_path):
    code = (
        "import datajoint as dj\n"
        "dj.config['database.host'] = '127.0.0.1'\n"
        "dj.config['database.port'] = 9\n"
        "dj.config['database.user'] = 'someone'\n"
        "dj.config['database.password'] = 'secret-pw'\n"
        "from nntransfer.settings import load_settings\n"
        "print(load_settings().mode, '|', load_settings().reason)\n"
        "from nntransfer import tables\n"
        "tables.activate('x')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], env=_clean_env(tmp_path), cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.stdout.startswith("server | dj.config['database.host'] was set in code")
    assert "DatabaseUnreachable: Cannot connect to the mysql server at 127.0.0.1:9" in result.stderr
    assert "secret-pw" not in result.stderr
    assert not (tmp_path / "home" / "pgdata").exists()  # nothing went to the embedded database


def test_nothing_configured_means_the_embedded_database(tmp_path):
    code = "from nntransfer.settings import load_settings; s = load_settings(); print(s.mode, '|', s.reason)"
    out = subprocess.run([sys.executable, "-c", code], env=_clean_env(tmp_path), cwd=tmp_path,
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "embedded | no DJ_HOST, datajoint.json or dj.config['database.host'] is set"


def test_the_host_nntransfer_set_for_the_embedded_server_does_not_count_as_a_users_setting(tmp_path):
    code = (
        "import datajoint as dj\n"
        "from nntransfer import settings\n"
        f"settings.note_embedded_host({str(tmp_path / 'socket')!r})\n"
        f"dj.config['database.host'] = {str(tmp_path / 'socket')!r}\n"
        "print(settings.load_settings().mode)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=_clean_env(tmp_path), cwd=tmp_path,
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "embedded"


def test_the_choice_is_logged_once(caplog, tmp_path):
    from nntransfer.db import _announce, import_datajoint

    dj = import_datajoint()
    chosen = Settings(mode="embedded", home=tmp_path, store="nntransfer", reason="nothing is configured")
    with caplog.at_level(logging.INFO, logger="nntransfer.db"):
        _announce(dj, chosen)
        _announce(dj, chosen)
    messages = [r.getMessage() for r in caplog.records if r.name == "nntransfer.db"]
    assert messages == [f"nntransfer uses the embedded PostgreSQL in {tmp_path / 'pgdata'} (nothing is configured)"]
