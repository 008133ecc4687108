"""Configs and hashing must work where datajoint (and torch) are not wanted."""

import os
import subprocess
import sys

import nntransfer


def test_configs_and_hashing_import_neither_datajoint_nor_torch():
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(nntransfer.__file__)))
    script = (
        "import sys\n"
        "import nntransfer.configs, nntransfer.hashing\n"
        "print(sorted(m for m in ('datajoint', 'torch') if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        env=dict(os.environ, PYTHONPATH=package_parent),
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == "[]"
