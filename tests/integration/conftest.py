"""Integration tests run against one real database per pytest process.

Without ``NNTRANSFER_TEST_SERVER`` they start an embedded PostgreSQL in a
temporary folder.  With ``NNTRANSFER_TEST_SERVER=postgresql://user@host:port``
or ``mysql://user@host:port`` they use that server through DataJoint's own
``DJ_*`` settings (the Makefile runs this suite once per listed server).
Each session works in its own schemas and drops them at the end.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlparse

import pytest

HERE = Path(__file__).parent
# Test functions are referenced by dotted path from the database, so the
# folder that holds them must be importable (workers get it via PYTHONPATH).
sys.path.insert(0, str(HERE))
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")]))
# ... and allowed: names stored in the database must lie in an allowed package (see nntransfer.resolve)
os.environ["NNTRANSFER_ALLOWED_PACKAGES"] = "itest_functions itest_nnfabrik itest_faults"

_server = os.environ.get("NNTRANSFER_TEST_SERVER")
_home = Path(tempfile.mkdtemp(prefix="nnt-test-"))
os.environ["NNTRANSFER_HOME"] = str(_home)
os.environ["NNTRANSFER_SCHEMA"] = f"nnt_test_{os.getpid()}_{secrets.token_hex(3)}"
if _server:
    url = urlparse(_server)
    os.environ.update(
        NNTRANSFER_DB="server",
        DJ_BACKEND="postgresql" if url.scheme.startswith("postgres") else "mysql",
        DJ_HOST=url.hostname or "127.0.0.1",
        DJ_USER=url.username or "root",
        DJ_PASS=url.password or "",
    )
    if url.port:
        os.environ["DJ_PORT"] = str(url.port)
else:
    os.environ["NNTRANSFER_DB"] = "embedded"
    for name in ("DJ_HOST", "DJ_PORT", "DJ_USER", "DJ_PASS", "DJ_BACKEND"):
        os.environ.pop(name, None)


def pytest_sessionfinish(session, exitstatus):
    """Remove this session's home (the embedded server's data, the artifact store), stopped by now."""
    shutil.rmtree(_home, ignore_errors=True)


def pytest_collection_modifyitems(items):
    for item in items:
        item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def backend_name():
    return urlparse(_server).scheme if _server else "embedded"


@pytest.fixture(scope="session")
def nt_schema():
    """The activated nntransfer schema of this session, dropped at the end."""
    from nntransfer import tables
    from nntransfer.db import embedded
    from nntransfer.settings import load_settings

    schema = tables.activate()
    # the tests delete and drop what they made without being asked; nntransfer leaves safemode to the user
    schema.connection._config["safemode"] = False
    yield schema
    extra = [s for s in _extra_schemas if s.exists]
    for user_schema in extra:
        user_schema.drop()
    schema.drop()
    if not _server:
        embedded.stop(load_settings().pgdata)


_extra_schemas: list = []


@pytest.fixture
def user_schema(nt_schema):
    """A user's own schema (as in nnfabrik's tutorial), dropped at the end of the session."""
    from nntransfer.db import import_datajoint

    dj = import_datajoint()
    schema = dj.Schema(f"{os.environ['NNTRANSFER_SCHEMA']}_user{len(_extra_schemas)}", connection=nt_schema.connection)
    _extra_schemas.insert(0, schema)
    return schema


@pytest.fixture
def db(nt_schema):
    """A clean nntransfer schema for one test."""
    from nntransfer import tables

    tables.Fabrikant().delete()
    tables.Seed().delete()
    tables.Checkpoint().delete_quick()
    tables.TrainedModel.jobs.delete()
    # recipe rows are keyed by no config: an earlier test's would be applied by this test's plan
    for recipe_table in (tables.DatasetTransferRecipe, tables.ModelTransferRecipe, tables.TrainerTransferRecipe,
                         tables.TrainerDatasetTransferRecipe, tables.TrainedModelTransferRecipe):
        recipe_table().delete()
    return tables


@pytest.fixture(scope="session")
def nnfabrik_main(nt_schema):
    """nntransfer.nnfabrik.main (importing it declares its tables), in a schema of this session dropped at the end."""
    from nntransfer.nnfabrik import dj

    dj.config["nnfabrik.schema_name"] = f"{os.environ['NNTRANSFER_SCHEMA']}_nnfcore"
    from nntransfer.nnfabrik import main

    yield main
    main.schema.drop()


@pytest.fixture
def store_dir():
    from nntransfer.settings import load_settings

    return load_settings().store_location
