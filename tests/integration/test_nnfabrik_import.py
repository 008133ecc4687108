"""nntransfer import-nnfabrik: an nnfabrik schema of DataJoint 0.14 on MySQL/MariaDB, read into nntransfer.

The old schema is built by the test (see ``legacy_nnfabrik``) on the MySQL or
MariaDB server of this run and imported into the same server; on the other
backends these tests are skipped: nnfabrik's schemas only ever lived on
MySQL-family servers (an import into PostgreSQL works the same way: the old
server is only read).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from urllib.parse import urlparse

import numpy as np
import pytest

from nntransfer.hashing import make_hash

FNS = "itest_nnfabrik"


def _mysql_url():
    url = os.environ.get("NNTRANSFER_TEST_SERVER", "")
    return url if url.startswith(("mysql://", "mariadb://")) else None


pytestmark = pytest.mark.skipif(_mysql_url() is None, reason="needs a MySQL or MariaDB server for the old schema")


@pytest.fixture(scope="module")
def legacy(nnfabrik_main, tmp_path_factory):
    """The old schema: a trained model and a two-step transfer chain, with their attachments."""
    import pymysql
    from legacy_nnfabrik import LegacySchema, blob, npz_file, state_file

    url = urlparse(_mysql_url())
    name = f"{os.environ['NNTRANSFER_SCHEMA']}_legacy"
    connection = pymysql.connect(host=url.hostname, port=url.port or 3306, user=url.username or "root",
                                 password=url.password or "", autocommit=True)
    store = tmp_path_factory.mktemp("old-store")
    old = LegacySchema(connection, name, store)
    old.insert("fabrikant", dict(fabrikant_name="Your Name", email="you@lab", affiliation="lab", dj_username="you"))
    old.insert("seed", {"seed": 2020})
    configs = {
        "dataset": (f"{FNS}.digits_dataset_fn", {"batch_size": 64}),
        "model": (f"{FNS}.digits_model_fn", {"h_dim": 5}),
        "trainer": (f"{FNS}.digits_trainer_fn", {"epochs": 1, "lr": np.float64(0.01), "optimizer": np.str_("adam"),
                                                  "noise_std": {0.08: 0.1, -1: 0.5}}),
    }
    key = {"seed": 2020}
    for kind, (fn, config) in configs.items():
        key.update({f"{kind}_fn": fn, f"{kind}_hash": make_hash(config)})
        old.insert(kind, {f"{kind}_fn": fn, f"{kind}_hash": make_hash(config), f"{kind}_config": blob(config),
                          f"{kind}_fabrikant": "Your Name", f"{kind}_comment": kind})
    old.insert("__trained_model", {**key, "comment": "digits", "score": 97.5, "output": blob(([97.5, 98.0], 2)),
                                   "fabrikant_name": "Your Name"})
    old.insert("__trained_model__model_storage", {**key, "model_state": old.attach("state.pth.tar", state_file(1))})
    step0 = {**key, "transfer_step": 0, "collapsed_history": "", "data_transfer": 1}
    step1 = {**key, "transfer_step": 1, "collapsed_history": make_hash(step0), "data_transfer": 0}
    logits = np.random.default_rng(0).normal(size=(400, 10)).astype(np.float32)
    for step, output in ((step0, {"history": np.arange(3.0)}), (step1, {})):
        old.insert("__transferred_trained_model", {**step, "score": 1.0, "output": blob(output),
                                                   "fabrikant_name": "Your Name"})
        old.insert("__transferred_trained_model__model_storage",
                   {**step, "model_state": old.attach(f"state{step['transfer_step']}.pth.tar", state_file(2))})
        old.insert("__transferred_trained_model__collapsed_history", {**step, "next_collapsed_history": make_hash(step)})
    old.insert("__transferred_trained_model__data_storage",
               {**step0, "transfer_data": old.attach("step0_transfer_data.npz", npz_file(train=logits))})
    yield {"url": f"{_mysql_url()}/{name}", "store": store, "key": key, "steps": [step0, step1], "logits": logits,
           "connection": connection, "name": name}
    old.execute(f"DROP DATABASE `{name}`")
    connection.close()


def _checksum(legacy) -> str:
    """A digest of every row of the old schema and every file of its store, to see that nothing changed."""
    digest = hashlib.sha256()
    with legacy["connection"].cursor() as cursor:
        cursor.execute(f"SHOW TABLES IN `{legacy['name']}`")
        for (table,) in sorted(cursor.fetchall()):
            cursor.execute(f"SELECT * FROM `{legacy['name']}`.`{table}`")
            digest.update(repr(sorted(map(repr, cursor.fetchall()))).encode())
    for path in sorted(legacy["store"].rglob("*")):
        digest.update(path.name.encode() + (path.read_bytes() if path.is_file() else b""))
    return digest.hexdigest()


@pytest.fixture(scope="module")
def imported(legacy):
    from nntransfer.nnfabrik.migration import import_nnfabrik

    target = f"{os.environ['NNTRANSFER_SCHEMA']}_imported"
    before = _checksum(legacy)
    report = import_nnfabrik(legacy["url"], target, store_location=str(legacy["store"]))
    assert _checksum(legacy) == before  # the old schema and its store were only read
    from nntransfer.nnfabrik.main import my_nnfabrik
    from nntransfer.nnfabrik.templates.trained_model import TrainedModelBase
    from nntransfer.nnfabrik.templates.transfer import TransferredTrainedModelBase

    module = my_nnfabrik(target, use_common_fabrikant=False, use_common_seed=False)
    for name, base in (("TrainedModel", TrainedModelBase), ("TransferredTrainedModel", TransferredTrainedModelBase)):
        setattr(module, name, module.schema(type(name, (base,), {"nnfabrik": module}), context=vars(module)))
    yield {"report": report, "module": module, "target": target}
    module.schema.drop()


def test_configs_keep_their_old_keys_and_trained_models_load(legacy, imported):
    module = imported["module"]
    key = legacy["key"]
    written = imported["report"].written
    assert {table.split(".")[-1].strip('`"'): count for table, count in written.items()}["trainer"] == 1
    assert (module.Trainer & key).fn_config == (f"{FNS}.digits_trainer_fn", {
        "epochs": 1, "lr": 0.01, "optimizer": "adam", "noise_std": {0.08: 0.1, -1: 0.5}})
    trained = module.TrainedModel()
    assert trained.fetch_output(key) == ([97.5, 98.0], 2)
    dataloaders, model = trained.load_model(key)
    from legacy_nnfabrik import state_file
    import io
    import torch

    expected = torch.load(io.BytesIO(state_file(1)), weights_only=True)
    assert all(torch.equal(model.state_dict()[name], value) for name, value in expected.items())
    assert (module.TrainedModel & {"trainer_hash": make_hash({"epochs": 1, "lr": 0.01, "optimizer": "adam",
                                                              "noise_std": {0.08: 0.1, -1: 0.5}})})


def test_transfer_chains_keep_their_history_and_can_be_continued(legacy, imported):
    module = imported["module"]
    step0, step1 = legacy["steps"]
    table = module.TransferredTrainedModel()
    chain = table.lineage(step1)
    assert [item["key"]["collapsed_history"] for item in chain] == ["", make_hash(step0)]
    assert chain[1]["received"] == "state_and_data"
    np.testing.assert_array_equal(table.fetch_transfer_data(step0)["train"], legacy["logits"])
    assert table.fetch_output(step0)["history"].tolist() == [0.0, 1.0, 2.0]
    # a new step after the imported ones is planned with nnfabrik's history, from the imported step
    from nntransfer.steps import collapse_history

    new_data = module.Dataset().add_entry(f"{FNS}.digits_dataset_fn", {"batch_size": 32}, skip_duplicates=True)
    step2 = {**step1, **new_data, "transfer_step": 2, "data_transfer": 0,
             "collapsed_history": collapse_history(step1["collapsed_history"], step1, "nnfabrik")}
    assert table.plan_chain([step0, step1, step2]) == 1
    table.populate("transfer_step=2", plan=False)
    continued = (table & "transfer_step=2").fetch1()
    assert continued["collapsed_history"] == make_hash(step1) and continued["received"] == "model_state"


def test_a_recipe_continues_an_imported_chain_that_no_recipe_planned(legacy, imported):
    from nntransfer.nnfabrik.main import my_nnfabrik
    from nntransfer.nnfabrik.templates.transfer.recipes import DatasetTransferRecipe

    module = imported["module"]
    lab = my_nnfabrik(imported["target"], additional_tables=(DatasetTransferRecipe,), use_common_fabrikant=False,
                      use_common_seed=False)
    step1 = legacy["steps"][1]
    smaller = module.Dataset().add_entry(f"{FNS}.digits_dataset_fn", {"batch_size": 16}, skip_duplicates=True)
    lab.DatasetTransferRecipe().add_entry(transfer_from={name: step1[name] for name in ("dataset_fn", "dataset_hash")},
                                          transfer_to=smaller, transfer_step=2)  # no recipe planned step 1
    table = module.TransferredTrainedModel
    table.transfer_recipe = [lab.DatasetTransferRecipe()]
    table.populate("transfer_step=2")
    continued = (table & {**smaller, "transfer_step": 2}).fetch1()
    assert continued["collapsed_history"] == make_hash(step1) and continued["received"] == "model_state"


def test_importing_again_changes_nothing_also_from_the_command_line(legacy, imported):
    module = imported["module"]
    counts = {name: len(getattr(module, name)()) for name in ("Dataset", "TrainedModel", "TransferredTrainedModel")}
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    result = subprocess.run(
        [sys.executable, "-m", "nntransfer.cli", "import-nnfabrik", "--from", legacy["url"], "--to",
         imported["target"], "--store-location", str(legacy["store"])],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "nothing to import"
    assert counts == {name: len(getattr(module, name)()) for name in counts}


def test_bad_sources_are_clear_errors_that_write_nothing(legacy, tmp_path):
    from nntransfer.errors import ConfigError, DatabaseError
    from nntransfer.nnfabrik.migration import import_nnfabrik

    with pytest.raises(ConfigError, match="mysql://user@host:3306/old_schema"):
        import_nnfabrik("postgresql://me:secret@host/x", "never")
    with pytest.raises(ConfigError, match="--store-location"):
        import_nnfabrik(legacy["url"], "never")
    with pytest.raises(DatabaseError, match="4 attachments .* cannot be read from .*Nothing was imported"):
        import_nnfabrik(legacy["url"], f"{os.environ['NNTRANSFER_SCHEMA']}_never", store_location=str(tmp_path))
    from nntransfer.db import import_datajoint

    assert f"{os.environ['NNTRANSFER_SCHEMA']}_never" not in import_datajoint().list_schemas()
