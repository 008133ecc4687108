"""Dependencies run one way: the package's import graph, read statically.

Every module of the package is parsed with ``ast``, so an import inside a
function counts as much as one at the top (a lazy import still ties two
layers together, only later), and nothing needs to be importable or
installed.  ``from package import name`` counts as importing the module that
the name is: a submodule, or the module that the package's lazy name table
(``_LAZY``) points to.  ``nntransfer/__init__.py`` itself imports nothing
when the package is imported, so it is no node of the graph.

The graph's nodes are the top-level parts of the package: ``nntransfer/X/``
and ``nntransfer/X.py`` are both the node ``X``.
"""

import ast
from collections import deque
from pathlib import Path

import pytest

import nntransfer

ROOT = Path(nntransfer.__file__).parent
PACKAGE = "nntransfer"

DATABASE_LAYERS = ("tables", "db", "runner", "cli")
LOWER_LAYERS = ("trainer", "transfer", "models", "datasets")

MAIN_LOOP_MODULES = f"{PACKAGE}.trainer.modules"
MAY_BE_IMPORTED_BY_MAIN_LOOP_MODULES = {
    f"{PACKAGE}.errors",
    f"{PACKAGE}.trainer.module",
    f"{PACKAGE}.trainer.state",
    f"{PACKAGE}.trainer.control",
    f"{PACKAGE}.trainer.objective",
    f"{PACKAGE}.trainer.batches",
    f"{PACKAGE}.trainer.devices",
    f"{PACKAGE}.trainer.randomness",
    f"{PACKAGE}.trainer.signatures",
    f"{PACKAGE}.trainer.checkpoints",
    f"{PACKAGE}.trainer.keywords",
    f"{PACKAGE}.trainer.metrics",
    f"{PACKAGE}.trainer.learning_rates",
    f"{PACKAGE}.resolve",
    f"{MAIN_LOOP_MODULES}.layer_capture",
}
"""Besides ``nntransfer.transfer.*``: the module base, State, control, objective, the errors, the small
leaf helpers (batches, devices, randomness, signatures; option keywords, metric names and learning-rate
groups for the config checks; the ground-floor name resolver), the checkpoint store interface and the
shared base of capture modules.  A helper joins this list only if it stays a leaf, which the test
``test_what_main_loop_modules_may_import_never_leads_to_the_loop_or_a_concrete_module`` checks."""


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


SOURCES = {module_name(path): path for path in sorted(ROOT.rglob("*.py"))}
TREES = {name: ast.parse(path.read_text(encoding="utf-8"), str(path)) for name, path in SOURCES.items()}


def is_package(name: str) -> bool:
    return SOURCES[name].name == "__init__.py"


def lazy_names(name: str) -> dict:
    """A package's ``_LAZY = {"Name": "dotted.module", ...}`` table, or {}."""
    for node in TREES[name].body:
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(target, ast.Name) and target.id == "_LAZY" for target in node.targets)
            and isinstance(node.value, ast.Dict)
        ):
            return {
                key.value: value.value
                for key, value in zip(node.value.keys, node.value.values)
                if isinstance(key, ast.Constant) and isinstance(value, ast.Constant)
            }
    return {}


LAZY = {name: lazy_names(name) for name in SOURCES if is_package(name)}


def imported_from(base: str, names) -> set:
    """The modules that ``from base import names`` loads."""
    found = set()
    for alias in names:
        candidate = f"{base}.{alias.name}"
        if candidate in SOURCES:
            found.add(candidate)
        elif alias.name in LAZY.get(base, {}):
            found.add(LAZY[base][alias.name])
        else:
            found.add(base)
    return found


def imports_of(name: str) -> set:
    """Every module that ``name`` imports anywhere in its code (package modules and third-party names)."""
    package = name if is_package(name) else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(TREES[name]):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            else:
                base = node.module
            found.update(imported_from(base, node.names))
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", None)) in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.add(node.args[0].value)
    return found


IMPORTS = {name: imports_of(name) for name in SOURCES}


def part(module: str):
    """The top-level part of the package that ``module`` belongs to, or None (the root, or not ours)."""
    pieces = module.split(".")
    if pieces[0] != PACKAGE or len(pieces) < 2:
        return None
    return pieces[1]


def part_graph() -> dict:
    """Top-level part -> the parts it imports, and -> the third-party top-level names it imports."""
    graph, external = {}, {}
    for name, targets in IMPORTS.items():
        source = part(name)
        if source is None:
            continue
        graph.setdefault(source, set())
        external.setdefault(source, set())
        for target in targets:
            if target.split(".")[0] != PACKAGE:
                external[source].add(target.split(".")[0])
            elif part(target) not in (None, source):
                graph[source].add(part(target))
    return graph, external


GRAPH, EXTERNAL = part_graph()


def find_cycle(graph: dict):
    """A list of nodes ``[a, b, ..., a]`` that import each other in a circle, or None."""
    state = {}
    stack = []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                return stack[stack.index(target):] + [target]
            if target not in state:
                cycle = visit(target)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def path_to(graph: dict, start: str, goal) -> list | None:
    """The shortest chain of imports from ``start`` to a node for which ``goal(node)`` holds, or None."""
    previous = {start: None}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        if node != start and goal(node):
            chain = [node]
            while previous[chain[-1]] is not None:
                chain.append(previous[chain[-1]])
            return chain[::-1]
        for target in sorted(graph.get(node, ())):
            if target not in previous:
                previous[target] = node
                queue.append(target)
    return None


def reaches(start: str, forbidden) -> list | None:
    """The chain from part ``start`` to a forbidden part, or to a part that imports datajoint, or None."""
    graph = {node: targets | {f"datajoint (from {node})"} if "datajoint" in EXTERNAL[node] else targets
             for node, targets in GRAPH.items()}
    return path_to(graph, start, lambda node: node in forbidden or node.startswith("datajoint"))


def test_the_graph_was_read():
    """The checks below mean something only if the reader found the package and its imports."""
    assert {"trainer", "transfer", "tables", "configs", "errors"} <= set(GRAPH)
    assert "transfer" in GRAPH["trainer"] and "datajoint" in EXTERNAL["tables"]
    assert f"{PACKAGE}.trainer.control" in IMPORTS[f"{PACKAGE}.trainer.modules.early_stopping"]
    assert imported_from(f"{PACKAGE}.trainer", [ast.alias("Loop")]) == {f"{PACKAGE}.trainer.loop"}  # a lazy name
    assert imported_from(PACKAGE, [ast.alias("tables")]) == {f"{PACKAGE}.tables"}  # a submodule


def test_the_top_level_parts_import_each_other_without_a_cycle():
    cycle = find_cycle(GRAPH)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_cycles_and_only_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) in (
        ["a", "b", "c", "a"], ["b", "c", "a", "b"], ["c", "a", "b", "c"],
    )
    assert find_cycle({"a": {"a"}}) == ["a", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


@pytest.mark.parametrize("layer", LOWER_LAYERS)
def test_lower_layers_never_reach_the_database_layers(layer):
    chain = reaches(layer, DATABASE_LAYERS)
    assert chain is None, f"{layer} reaches the database layers: " + " -> ".join(chain)


def test_configs_never_reach_the_tables_or_the_builder():
    """Configs describe rows; inserting and building them is the layers above (kept apart so the lead can mark it)."""
    chain = reaches("configs", DATABASE_LAYERS + ("builder",))
    assert chain is None, "configs reach a layer above them: " + " -> ".join(chain)


def test_the_reach_check_would_see_a_forbidden_import(monkeypatch):
    monkeypatch.setitem(GRAPH, "transfer", GRAPH["transfer"] | {"steps"})
    monkeypatch.setitem(GRAPH, "steps", GRAPH["steps"] | {"tables"})
    assert reaches("datasets", DATABASE_LAYERS) == ["datasets", "transfer", "steps", "tables"]
    monkeypatch.setitem(EXTERNAL, "models", EXTERNAL["models"] | {"datajoint"})
    assert reaches("models", DATABASE_LAYERS) == ["models", "datajoint (from models)"]


def test_transfer_never_reaches_the_trainer():
    """The trainer may use the transfer helpers; the transfer helpers never use the trainer."""
    chain = path_to(GRAPH, "transfer", lambda node: node == "trainer")
    assert chain is None, "transfer reaches the trainer: " + " -> ".join(chain)


def main_loop_modules() -> list:
    prefix = f"{MAIN_LOOP_MODULES}."
    return [name for name in SOURCES if name.startswith(prefix)]


def not_for_a_main_loop_module(module: str, targets) -> list:
    """The package modules among ``targets`` that main-loop module ``module`` may not import."""
    allowed = MAY_BE_IMPORTED_BY_MAIN_LOOP_MODULES - {module}
    return sorted(
        target for target in targets
        if target.split(".")[0] == PACKAGE
        and target not in allowed
        and target != f"{PACKAGE}.transfer"
        and not target.startswith(f"{PACKAGE}.transfer.")
    )


@pytest.mark.parametrize("module", main_loop_modules())
def test_main_loop_modules_import_only_the_base_and_leaf_helpers(module):
    wrong = not_for_a_main_loop_module(module, IMPORTS[module])
    assert not wrong, (
        f"{module} imports {wrong}; a main-loop module may import only "
        f"{sorted(MAY_BE_IMPORTED_BY_MAIN_LOOP_MODULES)} and nntransfer.transfer"
    )


def test_the_main_loop_module_check_would_see_the_loop_or_another_module():
    distillation = f"{MAIN_LOOP_MODULES}.distillation"
    imports = {f"{PACKAGE}.trainer.loop", f"{MAIN_LOOP_MODULES}.checkpointing", MAIN_LOOP_MODULES,
               f"{PACKAGE}.transfer.features", f"{PACKAGE}.trainer.batches", "torch"}
    assert not_for_a_main_loop_module(distillation, imports) == [
        f"{PACKAGE}.trainer.loop", MAIN_LOOP_MODULES, f"{MAIN_LOOP_MODULES}.checkpointing",
    ]


def module_graph() -> dict:
    return {name: {target for target in targets if target in SOURCES} for name, targets in IMPORTS.items()}


@pytest.mark.parametrize("helper", sorted(MAY_BE_IMPORTED_BY_MAIN_LOOP_MODULES))
def test_what_main_loop_modules_may_import_never_leads_to_the_loop_or_a_concrete_module(helper):
    concrete = set(main_loop_modules()) - {f"{MAIN_LOOP_MODULES}.layer_capture"}
    off_limits = concrete | {f"{PACKAGE}.trainer.loop", MAIN_LOOP_MODULES}
    chain = path_to(module_graph(), helper, lambda name: name in off_limits)
    assert chain is None, " -> ".join(chain)


def test_the_loop_names_no_concrete_main_loop_module():
    """Modules join a run through the registry (default_modules), never because the loop imports one."""
    named = sorted(target for target in IMPORTS[f"{PACKAGE}.trainer.loop"] if target.startswith(f"{MAIN_LOOP_MODULES}."))
    assert not named, f"the loop imports {named}"
