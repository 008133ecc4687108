"""Run the Python code blocks of the tutorials and of the getting-started page.

A page whose code does not run teaches the wrong thing, so every fenced
`python` block of ``docs/getting-started.md`` and ``docs/tutorials/*.md`` is
executed.  The blocks of one page run in order in one namespace, as a reader
pasting them into a notebook would run them: the page becomes a script in
which every line that is not Python code is blanked, so a traceback's line
numbers are the page's own.  Each page runs in a subprocess with its own
``NNTRANSFER_HOME`` (a fresh embedded PostgreSQL and object store) in a
temporary working directory, and that server is stopped afterwards.

In the tutorials, ``bash`` blocks run too: each command line becomes a
shell call at its place in the script (on the getting-started page they do
not, since they show ``make`` set-up and server commands).  A python block
right after ``<!-- save as NAME -->`` is also written to the file NAME in the
working directory before the page runs, as the page tells the reader to do.
Blocks that must not run (cluster configuration, printed output) use other
fences (json, text, yaml).
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
SAVE_AS = re.compile(r"^<!--\s*save as (?P<name>[\w.-]+)\s*-->$")
SHELL_HELPER = "import subprocess as __subprocess; __shell = lambda command: __subprocess.run(command, shell=True, check=True)"


def python_script(text: str, run_shell: bool = False) -> str:
    """The page with every line outside a top-level python block blanked.

    With ``run_shell``, each command line of a ``bash`` block becomes a call
    that runs it in a shell (the helper it needs sits on the page's first
    line, which must be prose).  Raises ValueError for a python block that is
    indented (inside a list or admonition), because such a block would
    otherwise be skipped silently, and for a fence that is never closed.
    """
    lines = text.splitlines()
    script = [""] * len(lines)
    fence = None
    kind = None
    for number, line in enumerate(lines, start=1):
        match = FENCE.match(line)
        if fence is None:
            if match:
                fence = match.group("ticks")
                kind = match.group("info").lower()
                if kind in ("python", "py") and match.group("indent"):
                    raise ValueError(f"line {number}: an indented python block would not run; unindent it")
            continue
        if match and match.group("ticks") == fence and not match.group("info"):
            fence = None
            continue
        if kind in ("python", "py"):
            script[number - 1] = line
        elif run_shell and kind == "bash" and line.strip() and not line.lstrip().startswith("#"):
            script[number - 1] = f"__shell({line.strip()!r})"
    if fence is not None:
        raise ValueError(f"a {fence} fence is not closed")
    if run_shell and any(line.startswith("__shell(") for line in script):
        if FENCE.match(lines[0]):
            raise ValueError("line 1 must be prose: the shell helper goes there")
        script[0] = SHELL_HELPER
    return "\n".join(script) + "\n"


def saved_files(text: str) -> dict:
    """``{name: code}`` of the python blocks that follow a ``<!-- save as NAME -->`` line."""
    files, name, block = {}, None, None
    for line in text.splitlines():
        if block is not None:
            if FENCE.match(line) and not FENCE.match(line).group("info"):
                files[name], name, block = "\n".join(block) + "\n", None, None
            else:
                block.append(line)
            continue
        found = SAVE_AS.match(line.strip())
        if found:
            name = found.group("name")
        elif name and FENCE.match(line):
            block = []
        elif line.strip():
            name = None
    return files


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
        # the `nntransfer` command of this environment for the pages' shell lines
        PATH=os.pathsep.join(filter(None, [str(Path(sys.executable).parent), env.get("PATH")])),
    )
    return env


def test_script_keeps_line_numbers_and_skips_other_fences():
    page = "# Title\n\n```python\nx = 1\n```\n\ntext\n\n```bash\nrm -rf /\n```\n\n```python\nprint(x)\n```\n"
    script = python_script(page).splitlines()
    assert script[3] == "x = 1"
    assert script[13] == "print(x)"
    assert "rm -rf /" not in python_script(page)


def test_tutorial_shell_lines_run_in_place_and_saved_blocks_are_found():
    page = "# Title\n\n<!-- save as r.py -->\n```python\nx = 1\n```\n\n```bash\n# a comment\nnntransfer run r.py  # go\n```\n"
    script = python_script(page, run_shell=True).splitlines()
    assert script[0] == SHELL_HELPER and script[4] == "x = 1"
    assert script[9] == "__shell('nntransfer run r.py  # go')" and script[8] == ""
    assert saved_files(page) == {"r.py": "x = 1\n"}
    assert saved_files("<!-- save as r.py -->\nprose\n```python\nx = 1\n```\n") == {}
    with pytest.raises(ValueError, match="line 1 must be prose"):
        python_script("```bash\nls\n```\n", run_shell=True)


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
def test_page_code_runs(page, tmp_path, embedded_home):
    from nntransfer.db import embedded

    home = embedded_home
    text = page.read_text()
    for name, code in saved_files(text).items():
        (tmp_path / name).write_text(code)
    script = tmp_path / f"{page.name}.py"
    script.write_text(python_script(text, run_shell=page.parent.name == "tutorials"))
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
