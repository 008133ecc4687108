"""The checks behind data safety that need no database: stored JSON, restrictions, artifact paths, names."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest

from nntransfer.errors import ConfigError, DatabaseError, UntrustedFunctionError
from nntransfer.hashing import config_hash, from_jsonable, to_stored

CHANGED_BY_JSONB = [-0.0, 1e16, -1.5e16, 1.7976931348623157e308, 1e23]


def test_floats_that_postgresql_would_change_are_stored_tagged_and_read_back_bit_for_bit():
    config = {"values": CHANGED_BY_JSONB + [0.1, 5e-324, 1e-7, 3.0], "nested": {"zero": -0.0}}
    stored = to_stored(config)
    assert stored["values"][:5] == [{"__float__": repr(value)} for value in CHANGED_BY_JSONB]
    assert stored["values"][5:] == [0.1, 5e-324, 1e-7, 3.0]  # these survive every backend as they are
    back = from_jsonable(json.loads(json.dumps(stored)))
    assert [math.copysign(1.0, v) for v in back["values"]] == [math.copysign(1.0, v) for v in config["values"]]
    assert back == config and math.copysign(1.0, back["nested"]["zero"]) == -1.0
    assert config_hash(back) == config_hash(config)  # the tags are not part of the hash
    assert from_jsonable({"__float__": "1e+16; DROP"}) == {"__float__": "1e+16; DROP"}  # only float text is read


@pytest.mark.parametrize(("config", "message"), [
    ({"name": "a\x00b"}, r"config\['name'\] contains a NUL character"),
    ({"a\x00": 1}, "contains a NUL character"),
    ({"name": "\ud800"}, "unpaired surrogate"),
])
def test_text_no_database_stores_is_refused_with_its_path(config, message):
    with pytest.raises(ConfigError, match=message):
        to_stored(config)


def test_nesting_deeper_than_the_limit_is_refused():
    deep = leaf = {}
    for _ in range(70):
        leaf["x"] = {}
        leaf = leaf["x"]
    with pytest.raises(ConfigError, match="nested more than 64 levels"):
        to_stored(deep)
    to_stored({"x": [[[[1]]]]})


@pytest.mark.parametrize("restriction", [
    {"dataset_fn": ["' OR 1=1 OR 'a'='a"]},
    {"dataset_fn": {"a": 1}},
    {"dataset_fn": object()},
    {"score": math.nan},
    {"dataset_fn": "a\x00"},
    {"dataset_config.a') OR 1=1 --": 1},
    [{"seed": 1}, {"seed": [2]}],
])
def test_restrictions_with_values_datajoint_would_not_escape_are_refused(restriction):
    from nntransfer.tables.restrictions import check_restriction

    with pytest.raises(ConfigError):
        check_restriction(restriction)


def test_typed_restrictions_pass_and_keys_the_table_lacks_are_ignored_as_datajoint_does():
    import numpy as np

    from nntransfer.tables.restrictions import check_restriction

    check_restriction([{"dataset_fn": "x' OR 'a'='a", "seed": np.int64(3), "score": 0.5, "flag": True}, "seed > 2"])
    check_restriction({"seed": 1, "output": {"a": [1, 2]}}, attributes={"seed"})  # a whole row restricting a part
    with pytest.raises(ConfigError):
        check_restriction({"seed": 1, "output": {"a": [1, 2]}}, attributes={"seed", "output"})


HASH = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize("path", [
    f"db/trained_model/{HASH}/model_state-0123456789abcdef.pt",
    f"db/trained_model/{HASH}/model_state.pt",  # written before attempts had names of their own
    f"db/trained_model/{HASH}/transfer_data-0123456789abcdef.npz",
])
def test_artifact_paths_of_the_keys_folder_are_accepted(path):
    from nntransfer.tables.artifacts import check_path

    assert check_path(path, f"db/trained_model/{HASH}") == path


@pytest.mark.parametrize("path", [
    "/etc/passwd",
    f"db/trained_model/{HASH}/../../../etc/passwd",
    f"db/trained_model/{HASH}/../{HASH}/model_state.pt",
    f"db/other/{HASH}/model_state.pt",
    f"db/trained_model/{HASH}/model_state.pt\n",
    f"db/trained_model/{HASH}/notes.txt",
    f"db\\trained_model\\{HASH}\\model_state.pt",
    "",
    None,
])
def test_artifact_paths_a_row_could_be_crafted_to_name_are_refused(path):
    from nntransfer.tables.artifacts import ArtifactError, check_path

    with pytest.raises(ArtifactError, match="edited or crafted"):
        check_path(path, f"db/trained_model/{HASH}")


@pytest.fixture
def folder_store(tmp_path):
    from nntransfer.db import import_datajoint
    from nntransfer.tables.artifacts import ArtifactStore

    dj = import_datajoint()
    previous = dict(dj.config.stores)
    dj.config["stores"] = {**previous, "nnt_unit": {"protocol": "file", "location": str(tmp_path)}}
    yield ArtifactStore("nnt_unit"), tmp_path
    dj.config["stores"] = previous


def test_a_folder_store_writes_private_files_unless_a_group_share_is_asked_for(folder_store, monkeypatch):
    store, root = folder_store
    folder = f"db/trained_model/{HASH}"
    store.put("model_state", f"{folder}/model_state-0123456789abcdef.pt", b"weights")
    assert (root / folder / "model_state-0123456789abcdef.pt").stat().st_mode & 0o777 == 0o600
    assert all((root / part).stat().st_mode & 0o777 == 0o700 for part in ("db", "db/trained_model", folder))
    assert not list((root / folder).glob(".tmp-*"))  # written to a temporary name and renamed
    monkeypatch.setenv("NNTRANSFER_STORE_MODE", "group")
    store.put("model_state", f"db/trained_model/{HASH[::-1]}/model_state.pt", b"w")
    assert (root / f"db/trained_model/{HASH[::-1]}/model_state.pt").stat().st_mode & 0o777 == 0o660
    assert (root / f"db/trained_model/{HASH[::-1]}").stat().st_mode & 0o7777 == 0o2770
    monkeypatch.setenv("NNTRANSFER_STORE_MODE", "world")
    with pytest.raises(DatabaseError, match="NNTRANSFER_STORE_MODE='world' is not a mode"):
        store.put("model_state", f"{folder}/model_state.pt", b"w")


def test_a_write_the_file_system_refuses_names_the_file(folder_store):
    from nntransfer.tables.artifacts import ArtifactError

    store, root = folder_store
    (root / "db").write_text("a file where a folder should be")
    with pytest.raises(ArtifactError, match=f"cannot write the artifact {root}/db/trained_model/.*: Not a directory"):
        store.put("model_state", f"db/trained_model/{HASH}/model_state.pt", b"w")


FILE_TOO_LARGE = """
import resource, signal, sys
from nntransfer.db import import_datajoint
from nntransfer.tables.artifacts import ArtifactError, ArtifactStore
dj = import_datajoint()
dj.config["stores"] = {**dj.config.stores, "nnt_unit": {"protocol": "file", "location": sys.argv[1]}}
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))
try:
    ArtifactStore("nnt_unit").put("model_state", "db/t/%s/model_state.pt" % ("0" * 32), b"x" * 5000)
except ArtifactError as error:
    print(error)
"""


def test_file_too_large_names_the_artifact(tmp_path):
    result = subprocess.run([sys.executable, "-c", FILE_TOO_LARGE, str(tmp_path)], capture_output=True, text=True,
                            timeout=120)
    assert f"cannot write the artifact {tmp_path}/db/t/{'0' * 32}/model_state.pt: File too large" in result.stdout, \
        result.stdout + result.stderr


def test_stored_names_must_lie_in_allowed_packages(monkeypatch):
    from nntransfer import resolve
    from nntransfer.trainer.components import OPTIMIZERS

    monkeypatch.delenv(resolve.ALLOWED_ENV, raising=False)
    monkeypatch.setattr(resolve, "_allowed_here", set())
    assert resolve.resolve_fn("os.path.join") is os.path.join  # code may name anything
    with resolve.stored_names():
        with pytest.raises(UntrustedFunctionError, match="dataset_fn 'torch.hub.load' is not in an allowed package"):
            resolve.resolve_fn("torch.hub.load", "dataset_fn")
        with pytest.raises(UntrustedFunctionError, match="'os.path.join'"):
            resolve.resolve_fn("os.path.join")
        assert resolve.resolve_fn("nntransfer.models.mlp.mlp_model_fn")
        assert resolve.resolve_name("optimizer", "torch.optim.SGD", OPTIMIZERS)
        assert resolve.resolve_name("optimizer", "adam", OPTIMIZERS)  # the code's own short names
        with pytest.raises(UntrustedFunctionError):
            resolve.resolve_fn("nntransferx.evil")  # a prefix counts at a dot only
        monkeypatch.setenv(resolve.ALLOWED_ENV, "os, json")
        assert resolve.resolve_fn("os.path.join") is os.path.join
        monkeypatch.delenv(resolve.ALLOWED_ENV)
        resolve.allow_packages("os.path")
        assert resolve.resolve_fn("os.path.join") is os.path.join
        with pytest.raises(UntrustedFunctionError):
            resolve.resolve_fn("os.system")
    with pytest.raises(ConfigError, match="not a package name"):
        resolve.allow_packages("os; rm -rf /")


@pytest.mark.parametrize("name", ['x"; CREATE TABLE pwned (a int); --', "../x", "my-schema", "", "1abc", "a" * 64,
                                  "ünicode"])
def test_schema_names_that_are_not_plain_identifiers_are_refused(name):
    from nntransfer.tables.locks import check_schema_name

    with pytest.raises(ConfigError, match="is not a usable schema name"):
        check_schema_name(name)


def test_schema_names_of_letters_digits_and_underscores_pass():
    from nntransfer.tables.locks import check_schema_name

    assert check_schema_name("My_project_2") == "My_project_2"


CHECKPOINT_TOO_LARGE = """
import resource, signal, sys
import torch
from nntransfer.trainer.checkpoints import CheckpointError, LocalCheckpointStore
store = LocalCheckpointStore(sys.argv[1])
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (100, resource.RLIM_INFINITY))
try:
    store.save(1, {"w": torch.zeros(1000)})
except CheckpointError as error:
    print(error)
"""


def test_a_checkpoint_the_file_system_refuses_names_its_file(tmp_path):
    result = subprocess.run([sys.executable, "-c", CHECKPOINT_TOO_LARGE, str(tmp_path)], capture_output=True,
                            text=True, timeout=120)
    assert f"cannot write the checkpoint {tmp_path}/last-000001.pt: File too large" in result.stdout, \
        result.stdout + result.stderr
    assert not list(tmp_path.glob(".tmp-*"))
