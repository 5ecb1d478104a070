"""The package's imports point one way: no module, and no folder, imports itself round a loop.

Every ``import`` and ``from ... import`` statement under ``src/freehead`` counts, those inside
functions and under ``if TYPE_CHECKING:`` too: an import deferred into a function still ties
the two modules together, it only hides the loop until the function runs.

The folders are layers, each importing only from those below it (training uses the
estimators' evaluation, never the other way)::

    cli
    apps
    training, evaluation
    inference
    data, models
    perception
    geometry

with the small top-level modules (errors, io_utils, media, config, checkpoint, sketch,
visualize) used from the layers above them.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import pytest

PACKAGE = "freehead"
SOURCE = Path(__file__).resolve().parents[1] / "src" / PACKAGE


@dataclass(frozen=True)
class Edge:
    """One import: ``source`` imports ``target`` at ``where`` (file:line)."""

    source: str
    target: str
    where: str


def module_names(root: Path = SOURCE) -> dict[str, Path]:
    """Every module of the package by its dotted name; a package's ``__init__.py`` is the
    package itself."""
    names = {}
    for path in sorted(root.rglob("*.py")):
        parts = [PACKAGE, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def _package_of(module: str, path: Path) -> str:
    """The package a relative import in ``module`` starts from."""
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def _resolve(name: str, modules: Mapping[str, Path]) -> str | None:
    """The longest known module that ``name`` names or lies in; ``None`` outside the package."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def _imported(node: ast.Import | ast.ImportFrom, module: str, path: Path) -> Iterable[str]:
    """The dotted names an import statement loads (before resolving to known modules)."""
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
        return
    base = node.module or ""
    if node.level:
        package = _package_of(module, path).split(".")
        package = package[: len(package) - (node.level - 1)]
        base = ".".join([*package, base]) if base else ".".join(package)
    for alias in node.names:
        # ``from freehead.x import y`` imports freehead.x.y when y is a submodule, else freehead.x
        yield f"{base}.{alias.name}" if alias.name != "*" else base


def import_edges(modules: Mapping[str, Path], root: Path = SOURCE) -> list[Edge]:
    """Every import from one module of the package in ``root`` to another (itself
    excluded)."""
    edges = []
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            for name in _imported(node, module, path):
                target = _resolve(name, modules)
                if target is not None and target != module:
                    where = f"{path.relative_to(root.parent)}:{node.lineno}"
                    edges.append(Edge(module, target, where))
    return edges


def unit_of(module: str) -> str:
    """The folder a module belongs to: ``freehead.training.loop`` → ``freehead.training``; a
    top-level module (``freehead.geometry``) is its own unit."""
    return ".".join(module.split(".")[:2])


def folder_edges(edges: Iterable[Edge]) -> list[Edge]:
    """The imports that cross from one folder (or top-level module) to another."""
    return [
        Edge(unit_of(e.source), unit_of(e.target), e.where)
        for e in edges
        if unit_of(e.source) != unit_of(e.target)
    ]


def strongly_connected(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """The strongly connected components of ``graph`` with more than one node (Tarjan,
    iterative), each sorted, in sorted order."""
    nodes = sorted(set(graph) | {t for targets in graph.values() for t in targets})
    successors = {n: sorted(set(graph.get(n, ()))) for n in nodes}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []
    for root in nodes:
        if root in index:
            continue
        work = [(root, iter(successors[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(successors[child])))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
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
    return sorted(components)


def shortest_cycle(graph: Mapping[str, Iterable[str]], start: str) -> list[str]:
    """A shortest loop from ``start`` back to itself (breadth first), as its nodes in order,
    ``start`` at both ends; empty if there is none."""
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(set(graph.get(node, ()))):
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return [*reversed(path), start]
                if child not in came_from:
                    came_from[child] = node
                    following.append(child)
        frontier = following
    return []


def describe_cycles(edges: Iterable[Edge]) -> list[str]:
    """One readable paragraph per loop in the graph of ``edges``: the modules (or folders) in
    the loop, and one loop through them with the line of each import; empty without loops."""
    edges = list(edges)
    graph: dict[str, set[str]] = {}
    where: dict[tuple[str, str], list[str]] = {}
    for e in edges:
        graph.setdefault(e.source, set()).add(e.target)
        where.setdefault((e.source, e.target), []).append(e.where)
    messages = []
    for component in strongly_connected(graph):
        inside = set(component)
        subgraph = {n: graph.get(n, set()) & inside for n in component}
        loop = shortest_cycle(subgraph, component[0])
        steps = [
            f"    {a} → {b}  ({', '.join(sorted(set(where[a, b])))})" for a, b in pairwise(loop)
        ]
        messages.append(
            f"loop among {len(component)}: {', '.join(component)}\n"
            + f"  e.g. {' → '.join(loop)}:\n"
            + "\n".join(steps)
        )
    return messages


def test_cycle_finder_catches_a_planted_loop():
    edges = [
        Edge("a", "b", "a.py:1"),
        Edge("b", "c", "b.py:2"),
        Edge("c", "a", "c.py:3"),  # the planted loop a → b → c → a
        Edge("c", "d", "c.py:4"),
        Edge("d", "e", "d.py:5"),  # d and e are not in a loop
        Edge("f", "g", "f.py:6"),
        Edge("g", "f", "g.py:7"),  # a second loop, f ⇄ g
    ]
    messages = describe_cycles(edges)
    assert len(messages) == 2
    assert messages[0].startswith("loop among 3: a, b, c")
    assert "a → b → c → a" in messages[0]
    assert "c → a  (c.py:3)" in messages[0]
    assert "f → g → f" in messages[1]
    assert describe_cycles(edges[3:5]) == []


def test_folders_of_a_planted_loop():
    edges = [
        Edge("freehead.training.tasks", "freehead.evaluation.estimators", "t.py:1"),
        Edge("freehead.evaluation.estimators", "freehead.training.data", "e.py:2"),
        Edge("freehead.training.data", "freehead.geometry", "d.py:3"),
    ]
    assert describe_cycles(edges) == []  # no loop between modules...
    (message,) = describe_cycles(folder_edges(edges))  # ...but one between folders
    assert "freehead.evaluation → freehead.training → freehead.evaluation" in message


def test_resolving_imports(tmp_path):
    root = tmp_path / PACKAGE
    (root / "sub").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "top.py").write_text("from freehead.sub import leaf, helper\n")
    (root / "sub" / "__init__.py").write_text("from . import leaf\n")
    (root / "sub" / "leaf.py").write_text("def f():\n    from ..top import x\n")
    modules = module_names(root)
    assert set(modules) == {"freehead", "freehead.top", "freehead.sub", "freehead.sub.leaf"}
    found = {(e.source, e.target) for e in import_edges(modules, root)}
    assert found == {
        ("freehead.top", "freehead.sub.leaf"),  # a submodule named in ``from ... import``
        ("freehead.top", "freehead.sub"),  # a name from the package's __init__
        ("freehead.sub", "freehead.sub.leaf"),  # relative, from an __init__
        ("freehead.sub.leaf", "freehead.top"),  # relative, inside a function
    }


@pytest.fixture(scope="module")
def edges() -> list[Edge]:
    return import_edges(module_names())


def test_no_module_imports_itself_round_a_loop(edges):
    loops = describe_cycles(edges)
    assert not loops, "import loops between modules:\n" + "\n".join(loops)


def test_no_folder_imports_itself_round_a_loop(edges):
    loops = describe_cycles(folder_edges(edges))
    assert not loops, "import loops between folders:\n" + "\n".join(loops)
