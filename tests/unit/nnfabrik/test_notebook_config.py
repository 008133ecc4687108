"""``from nntransfer.nnfabrik import dj`` takes every dj.config setting the first cell of nnfabrik's notebooks makes.

nnfabrik_example, checkpoint_example and transfer_example set the database
host, user and password, ``enable_python_native_blobs`` and an S3 store
``"minio"`` (after ``"stores" in dj.config``); experiments_example also
``schema_name``, and older lab code ``nnfabrik.schema_name``.  The cell is
run in a process of its own (a host set in code is a setting of that process).
"""

import json
import os
import subprocess
import sys

CELL = """
import json
from nntransfer.nnfabrik import dj

dj.config["database.host"] = "db.lab.example.org"
dj.config["database.user"] = "someone"
dj.config["database.password"] = "not-shown"
dj.config["enable_python_native_blobs"] = True
if "stores" not in dj.config:
    dj.config["stores"] = {}
dj.config["stores"]["minio"] = {"protocol": "s3", "endpoint": "minio.lab.example.org:9000", "bucket": "nnfabrik",
                                "location": "dj-store", "access_key": "KEY", "secret_key": "SECRET"}
dj.config["schema_name"] = "lab_experiments"
dj.config["nnfabrik.schema_name"] = "lab_core"

import datajoint
from nntransfer.settings import load_settings

own = datajoint.config
print(json.dumps({
    "host": own["database.host"], "user": own["database.user"], "password_set": own["database.password"] == "not-shown",
    "minio": own["stores"]["minio"]["endpoint"], "kept": [dj.config[k] for k in
        ("enable_python_native_blobs", "schema_name", "nnfabrik.schema_name")],
    "contains": ["stores" in dj.config, "enable_python_native_blobs" in dj.config], "mode": load_settings().mode,
}))
"""


def test_the_first_cell_of_nnfabriks_notebooks_runs_with_only_the_import_changed(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJ_", "NNTRANSFER_"))}
    env["NNTRANSFER_HOME"] = str(tmp_path)
    result = subprocess.run([sys.executable, "-c", CELL], env=env, cwd=tmp_path, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen == {"host": "db.lab.example.org", "user": "someone", "password_set": True,
                    "minio": "minio.lab.example.org:9000", "kept": [True, "lab_experiments", "lab_core"],
                    "contains": [True, True], "mode": "server"}
    assert "not-shown" not in result.stderr
