"""Guards of the layout: no import circle inside ``tsm_core`` and no module grown too long.

The import graph is built from the modules' source with :mod:`ast` (nothing is imported):
every ``import`` and ``from ... import`` of a ``tsm_core`` module counts, also inside a
function, except those under ``if TYPE_CHECKING:``, which never run. An import names the most
specific module it reaches: ``from tsm_core.plugins import manager`` is an edge to
``tsm_core.plugins.manager``, ``from tsm_core.plugins import writer`` one to ``tsm_core.plugins``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "tsm_core"
SOURCE = ROOT / "src" / PACKAGE
#: the longest a module may be (the aim is ~350 lines; this leaves room for a docstring's growth)
MAX_LINES = 400


def module_name(path: Path) -> str:
    """The dotted name of the module at ``path`` under ``src/`` (a package by its ``__init__``)."""
    parts = list(path.relative_to(SOURCE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_imports(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """The import statements under ``node`` that run (the body of ``if TYPE_CHECKING:`` left out)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child
        elif isinstance(child, ast.If) and _is_type_checking(child.test):
            for orelse in child.orelse:
                yield from _runtime_imports(ast.Module(body=[orelse], type_ignores=[]))
        else:
            yield from _runtime_imports(child)


def _base(name: str, is_package: bool, statement: ast.ImportFrom) -> str:
    """The absolute module a ``from`` import starts from (relative imports resolved)."""
    if not statement.level:
        return statement.module or ""
    parts = name.split(".") if is_package else name.split(".")[:-1]
    parts = parts[: len(parts) - (statement.level - 1)]
    return ".".join(parts + ([statement.module] if statement.module else []))


def import_graph() -> dict[str, set[str]]:
    """Module -> the ``tsm_core`` modules it imports at run time."""
    paths = sorted(SOURCE.rglob("*.py"))
    modules = {module_name(p): p for p in paths}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        edges: set[str] = set()
        for statement in _runtime_imports(ast.parse(path.read_text(), str(path))):
            if isinstance(statement, ast.Import):
                targets = [alias.name for alias in statement.names]
            else:
                base = _base(name, is_package, statement)
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in statement.names]
            edges |= {t for t in targets if t in modules and t != name}
        graph[name] = edges
    return graph


def tangles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan): each module of one
    reaches every other one through imports."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph.get(node, ())):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One import cycle through each tangle, as a path ``[a, b, ..., a]``."""
    return [_cycle_in(graph, set(c)) for c in tangles(graph)]


def _cycle_in(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """A shortest import cycle from the first module of ``component`` back to itself."""
    start = min(component)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for succ in sorted(graph[node] & component):
                if succ == start:
                    return paths[node] + [start]
                if succ not in paths:
                    paths[succ] = paths[node] + [succ]
                    following.append(succ)
        frontier = following
    raise AssertionError(f"no cycle in {component}")  # a strongly connected component has one


def test_no_import_cycle_in_tsm_core():
    graph = import_graph()
    found = [(_cycle_in(graph, set(t)), t) for t in tangles(graph)]
    assert not found, "import cycles in tsm_core:\n" + "\n".join(
        " -> ".join(cycle) + (f"  (tangle: {', '.join(t)})" if len(t) > len(cycle) - 1 else "") for cycle, t in found
    )


def test_no_module_over_the_size_limit():
    sources = [SOURCE, *sorted(ROOT.glob("plugins/*/src"))]
    lengths = {p.relative_to(ROOT): len(p.read_text().splitlines()) for s in sources for p in s.rglob("*.py")}
    offenders = sorted((n, str(p)) for p, n in lengths.items() if n > MAX_LINES)
    assert not offenders, f"modules over {MAX_LINES} lines:\n" + "\n".join(f"{n:5d} {p}" for n, p in offenders[::-1])


# -- the guards' own machinery, on made-up graphs and sources ---------------------------------


def test_cycles_found_and_printed_as_a_path():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e", "d"}}
    assert cycles(graph) == [["a", "b", "c", "a"]] and tangles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_type_checking_imports_ignored_function_imports_counted():
    source = ast.parse(
        "from typing import TYPE_CHECKING\n"
        "import typing\n"
        "if TYPE_CHECKING:\n    import tsm_core.a\n"
        "if typing.TYPE_CHECKING:\n    import tsm_core.b\nelse:\n    import tsm_core.c\n"
        "def f():\n    from tsm_core import d\n"
    )
    names = [a.name for s in _runtime_imports(source) for a in s.names]
    assert names == ["TYPE_CHECKING", "typing", "tsm_core.c", "d"]


def test_relative_imports_resolved():
    statement = ast.parse("from ..errors import X").body[0]
    assert isinstance(statement, ast.ImportFrom)
    assert _base("tsm_core.plugins.manager", False, statement) == "tsm_core.errors"
    assert _base("tsm_core.plugins", True, statement) == "tsm_core.errors"
