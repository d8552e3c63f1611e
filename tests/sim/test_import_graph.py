"""No import circle inside breakoutd.sim: each module can be read knowing only
those below it.

The graph is built from the source with ``ast``, from every import statement
of a module: top-level ones, those inside functions, and those under
``if TYPE_CHECKING:``. A circle kept alive only for the type checker is still
a circle for a reader (to follow the handler you must hold the gateway in
mind, and the other way round), so it counts. An edge goes to the module an
import names: ``from breakoutd.sim import outgoing`` is an edge to
``breakoutd.sim.outgoing``, ``from breakoutd.sim import Market`` one to the
package ``breakoutd.sim`` itself (whose ``__init__`` imports the gateway).
Running a package's ``__init__`` before its submodules is Python's doing, not
an import the module wrote, and is not an edge.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import breakoutd.sim

PACKAGE = "breakoutd.sim"
ROOT = Path(breakoutd.sim.__file__).parent


def module_names() -> dict[str, Path]:
    """Every module of the package, by dotted name (a package by its own name)."""
    names = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join((PACKAGE, *parts))] = path
    return names


def _targets(node: ast.Import | ast.ImportFrom, name: str, is_package: bool,
             modules: dict[str, Path]) -> set[str]:
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names if alias.name in modules}
    base = node.module or ""
    if node.level:
        anchor = name.split(".")
        if not is_package:
            anchor = anchor[:-1]
        anchor = anchor[:len(anchor) - (node.level - 1)]
        base = ".".join(anchor + ([base] if base else []))
    found = set()
    for alias in node.names:
        child = f"{base}.{alias.name}"
        if child in modules:
            found.add(child)
        elif base in modules:
            found.add(base)
    return found


def import_graph() -> dict[str, set[str]]:
    """module -> the modules of the package it imports (TYPE_CHECKING ones included)."""
    modules = module_names()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        edges: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                edges |= _targets(node, name, path.name == "__init__.py", modules)
        edges.discard(name)
        graph[name] = edges
    return graph


def find_circle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle (its modules in order, the first repeated at the end), or None."""
    done: set[str] = set()
    path: list[str] = []
    on_path: set[str] = set()

    def visit(node: str) -> list[str] | None:
        path.append(node)
        on_path.add(node)
        for target in sorted(graph.get(node, ())):
            if target in on_path:
                return path[path.index(target):] + [target]
            if target not in done:
                circle = visit(target)
                if circle is not None:
                    return circle
        on_path.discard(path.pop())
        done.add(node)
        return None

    for start in sorted(graph):
        if start not in done:
            circle = visit(start)
            if circle is not None:
                return circle
    return None


def test_the_sim_has_no_import_circle() -> None:
    circle = find_circle(import_graph())
    assert circle is None, "import circle in breakoutd.sim: " + " -> ".join(circle or [])


def test_the_graph_sees_every_kind_of_import() -> None:
    """A parser that missed imports would find no circle in anything."""
    graph = import_graph()
    assert "breakoutd.sim.session" in graph["breakoutd.sim.gateway"]  # from X import Name
    assert "breakoutd.sim.outgoing" in graph["breakoutd.sim.gateway"]  # from pkg import module
    assert "breakoutd.sim.matching.engine" in graph["breakoutd.sim.matching"]  # a package's own
    assert "breakoutd.sim.gateway" in graph["breakoutd.sim"]


def test_a_circle_behind_type_checking_is_found() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_circle(graph) == ["a", "b", "c", "a"]
    assert find_circle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None
    tree = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                     "    from breakoutd.sim.gateway import SimGateway\n")
    modules = module_names()
    found = set().union(*(_targets(n, "breakoutd.sim.requests", False, modules)
                          for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)))
    assert found == {"breakoutd.sim.gateway"}


def test_the_matching_engine_imports_nothing_else_of_the_sim() -> None:
    """The engine is pure: tested without a socket, it must not lean on the wire."""
    graph = import_graph()
    for name, targets in graph.items():
        if name.startswith("breakoutd.sim.matching"):
            outside = {t for t in targets if not t.startswith("breakoutd.sim.matching")}
            assert not outside, f"{name} imports {sorted(outside)}"


def closure(graph: dict[str, set[str]], start: str) -> set[str]:
    """Every module ``start`` imports, directly or through others."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        for target in graph.get(todo.pop(), ()):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def test_the_gateway_is_on_top_and_sessions_see_only_their_host() -> None:
    """Handlers get the state and sessions a SessionHost: none of them reaches the gateway."""
    graph = import_graph()
    importers = sorted(name for name, targets in graph.items() if "breakoutd.sim.gateway" in targets)
    assert importers == ["breakoutd.sim"]
    reach = closure(graph, "breakoutd.sim.session")
    assert not reach & {"breakoutd.sim.gateway", "breakoutd.sim.state", "breakoutd.sim.requests"}


def test_docs_name_every_module_of_the_sim_and_no_other() -> None:
    """docs/sim.md's table is the map a newcomer reads: it must match the files."""
    text = (ROOT.parents[1] / "docs" / "sim.md").read_text()
    named = set(re.findall(r"`(breakoutd/sim/[\w/]+\.py)`", text))
    files = {str(p.relative_to(ROOT.parents[1])) for p in module_names().values()}
    assert named == files, (f"not in docs/sim.md: {sorted(files - named)}; "
                            f"no such module: {sorted(named - files)}")
