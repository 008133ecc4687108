"""Run the Python code blocks of the tutorials and of the getting-started page.

A page whose code does not run teaches the wrong thing, so every fenced
`python` block of ``docs/getting-started.md`` and ``docs/tutorials/*.md`` is
executed.  The blocks of one page run in order in one namespace, as a reader
pasting them into a notebook would run them: the page becomes a script in
which every line that is not Python code is blanked, so a traceback's line
numbers are the page's own.  Each page runs in a subprocess with its own
``NNTRANSFER_HOME`` (a fresh embedded PostgreSQL and object store) in a
temporary working directory, and that server is stopped afterwards.

Blocks that must not run (shell commands, cluster configuration) use other
fences (bash, json, text, yaml).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
EXECUTED_PAGES = sorted([DOCS / "getting-started.md", *(DOCS / "tutorials").glob("*.md")])
PAGE_TIMEOUT_S = 600

FENCE = re.compile(r"^(?P<indent>\s*)(?P<ticks>`{3,}|~{3,})\s*(?P<info>[^\s`]*)")


def python_script(text: str) -> str:
    """The page with every line outside a top-level python block blanked.

    Raises ValueError for a python block that is indented (inside a list or
    admonition), because such a block would otherwise be skipped silently,
    and for a fence that is never closed.
    """
    lines = text.splitlines()
    script = [""] * len(lines)
    fence = None
    is_python = False
    for number, line in enumerate(lines, start=1):
        match = FENCE.match(line)
        if fence is None:
            if match:
                fence = match.group("ticks")
                is_python = match.group("info").lower() in ("python", "py")
                if is_python and match.group("indent"):
                    raise ValueError(f"line {number}: an indented python block would not run; unindent it")
            continue
        if match and match.group("ticks") == fence and not match.group("info"):
            fence = None
            continue
        if is_python:
            script[number - 1] = line
    if fence is not None:
        raise ValueError(f"a {fence} fence is not closed")
    return "\n".join(script) + "\n"


def clean_environment(home: Path) -> dict:
    """The embedded database in ``home`` whatever this shell points DataJoint at."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("DJ_")}
    env.pop("NNTRANSFER_SCHEMA", None)
    env.pop("NNTRANSFER_STORE", None)
    env.update(
        NNTRANSFER_HOME=str(home),
        NNTRANSFER_DB="embedded",
        MPLBACKEND="Agg",
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
    )
    return env


def test_script_keeps_line_numbers_and_skips_other_fences():
    page = "# Title\n\n```python\nx = 1\n```\n\ntext\n\n```bash\nrm -rf /\n```\n\n```python\nprint(x)\n```\n"
    script = python_script(page).splitlines()
    assert script[3] == "x = 1"
    assert script[13] == "print(x)"
    assert "rm -rf /" not in python_script(page)


def test_script_refuses_indented_python_blocks():
    with pytest.raises(ValueError, match="indented"):
        python_script("1. step\n\n    ```python\n    x = 1\n    ```\n")


def test_every_executed_page_has_python():
    missing = [page.name for page in EXECUTED_PAGES if not python_script(page.read_text()).strip()]
    assert EXECUTED_PAGES and not missing


def test_every_page_is_in_the_navigation():
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())

    def listed(nav):
        for item in nav:
            value = next(iter(item.values())) if isinstance(item, dict) else item
            if isinstance(value, list):
                yield from listed(value)
            else:
                yield value

    pages = {str(path.relative_to(DOCS)) for path in DOCS.rglob("*.md")}
    assert pages - set(listed(config["nav"])) == set()


@pytest.mark.slow
@pytest.mark.parametrize("page", EXECUTED_PAGES, ids=lambda page: str(page.relative_to(DOCS)))
def test_page_code_runs(page, tmp_path):
    from nntransfer.db import embedded

    home = tmp_path / "home"
    script = tmp_path / f"{page.name}.py"
    script.write_text(python_script(page.read_text()))
    try:
        result = subprocess.run(
            [sys.executable, str(script)],
            cwd=tmp_path,
            env=clean_environment(home),
            capture_output=True,
            text=True,
            timeout=PAGE_TIMEOUT_S,
        )
    finally:
        embedded.stop(home / "pgdata")
    assert result.returncode == 0, (
        f"{page.relative_to(ROOT)} failed (line numbers are the page's):\n"
        f"{result.stdout[-3000:]}\n{result.stderr[-6000:]}"
    )
