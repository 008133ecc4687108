"""A notebook's own package, trained by a separate worker process: the worker's error says exactly what to set.

The notebook adds entries whose functions lie in packages next to it (nnfabrik's
``add_entry`` trusts them in that process); a worker process started from a
lab's script trains them with ``populate(reserve_jobs=True)``.  Without the
packages in ``NNTRANSFER_ALLOWED_PACKAGES`` it refuses, naming the setting
with every package the entry needs; with exactly that setting it trains.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys

import pytest

WORKER = """
from nntransfer.nnfabrik import dj
dj.config["nnfabrik.schema_name"] = {core!r}
from nntransfer.nnfabrik.main import my_nnfabrik
from nntransfer.nnfabrik.templates.trained_model import TrainedModelBase

lab = my_nnfabrik({schema!r})


@lab.schema
class TrainedModel(TrainedModelBase):
    nnfabrik = lab


TrainedModel.populate(reserve_jobs=True)
print("trained:", len(TrainedModel()))
"""


@pytest.fixture
def lab(nnfabrik_main, tmp_path, monkeypatch):
    """A notebook's folder with two packages of nnfabrik-style functions, and the notebook's schema."""
    from nntransfer.nnfabrik.main import my_nnfabrik

    names = (f"nbdata_{secrets.token_hex(3)}", f"nbtrain_{secrets.token_hex(3)}")
    for name, source in zip(names, ("from itest_nnfabrik import digits_dataset_fn, digits_model_fn\n",
                                    "from itest_nnfabrik import digits_trainer_fn\n")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text("")
        (tmp_path / name / "functions.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    module = my_nnfabrik(f"{os.environ['NNTRANSFER_SCHEMA']}_nnfwk")
    module.Fabrikant().insert1(dict(fabrikant_name="Your Name", email="you@lab", affiliation="lab",
                                    dj_username="you"), skip_duplicates=True)
    yield module, names, tmp_path
    module.schema.drop()


def _worker(module, folder, allowed):
    env = {**os.environ, "NNTRANSFER_ALLOWED_PACKAGES": allowed, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(folder), os.environ["PYTHONPATH"]])}
    code = WORKER.format(core=os.environ["NNTRANSFER_SCHEMA"] + "_nnfcore", schema=module.schema.database)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)


def test_a_worker_names_exactly_the_setting_that_lets_it_train_a_notebooks_functions(lab):
    from nntransfer.nnfabrik.templates.trained_model import TrainedModelBase

    module, (data, train), folder = lab
    module.Dataset().add_entry(f"{data}.functions.digits_dataset_fn", {"batch_size": 64})
    module.Model().add_entry(f"{data}.functions.digits_model_fn", {"h_dim": 5})
    module.Trainer().add_entry(f"{train}.functions.digits_trainer_fn", {"epochs": 1})
    module.Seed().insert1({"seed": 2020})

    before = os.environ["NNTRANSFER_ALLOWED_PACKAGES"]
    refused = _worker(module, folder, before)
    assert refused.returncode != 0 and "UntrustedFunctionError" in refused.stderr
    setting = f"NNTRANSFER_ALLOWED_PACKAGES={data},{train},{','.join(before.split())}"
    assert setting in refused.stderr  # both packages, and what the worker had already

    @module.schema
    class TrainedModel(TrainedModelBase):
        nnfabrik = module

    (TrainedModel.jobs & "status='error'").delete()  # as nnfabrik's checkpoint notebook does
    allowed = re.search(r"NNTRANSFER_ALLOWED_PACKAGES=(\S+?)\s", refused.stderr).group(1)
    trained = _worker(module, folder, allowed)
    assert trained.returncode == 0, trained.stderr
    assert trained.stdout.strip().endswith("trained: 1") and len(TrainedModel()) == 1
