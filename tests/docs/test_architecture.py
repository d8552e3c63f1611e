"""docs/architecture.md says what the code does: its table of rooms is the import graph.

Each room (a package or a top-level module of breakoutd) may import only the
rooms its row names (and, where the row says "only" a module, only that one);
every room has a row; every file the page names exists.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "breakoutd"
DOC = ROOT / "docs" / "architecture.md"
ANY = "any"


def _allowed() -> dict[str, set[str] | None]:
    """Room -> the rooms its row names (None: any)."""
    rows: dict[str, set[str] | None] = {}
    for line in DOC.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not re.fullmatch(r"`\w+`", cells[0]):
            continue
        last = re.sub(r"\(.*?\)", "", cells[2])  # "(only sim/clock.py ...)" is a remark
        rows[cells[0].strip("`")] = None if last == ANY else set(re.findall(r"`(\w+)`", last))
    return rows


def _only() -> dict[tuple[str, str], str]:
    """(room, imported room) -> the one module of it a row allows: "`sim` (only `sim/clock.py`"."""
    pairs = re.findall(r"^\| `(\w+)` .*`(\w+)` \(only [^`]*`(\w+)/(\w+)\.py`", DOC.read_text(), re.M)
    return {(room, dst): f"breakoutd.{pkg}.{mod}" for room, dst, pkg, mod in pairs if pkg == dst}


def _is_room(name: str) -> bool:
    return (PACKAGE / name).is_dir() or (PACKAGE / f"{name}.py").is_file()


def _room(module: str) -> str:
    return module.split(".")[1]


def _modules() -> dict[str, set[str]]:
    """Room -> the modules of other rooms it imports (anywhere in a module, type-only too)."""
    out: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(ROOT).with_suffix("")
        if rel.parts == ("breakoutd", "__init__"):
            continue
        room = rel.parts[1]
        found = out.setdefault(room, set())
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module] if isinstance(node, ast.ImportFrom) and node.module
                     else [])
            if isinstance(node, ast.ImportFrom) and node.module == "breakoutd":  # a room by name
                names = [f"breakoutd.{a.name}" for a in node.names if _is_room(a.name)]
            found |= {n for n in names if n.startswith("breakoutd.") and _room(n) != room}
    return out


def _imports() -> dict[str, set[str]]:
    """Room -> the other rooms it imports."""
    return {room: {_room(m) for m in found} for room, found in _modules().items()}


def test_every_room_has_a_row() -> None:
    assert sorted(_imports()) == sorted(_allowed())


def test_each_room_imports_only_the_rooms_its_row_names() -> None:
    allowed = _allowed()
    beyond = {room: sorted(found - (allowed[room] or found))
              for room, found in _imports().items() if room in allowed}
    assert {room: extra for room, extra in beyond.items() if extra} == {}


def test_where_a_row_says_only_one_module_no_other_is_imported() -> None:
    only = _only()
    assert len(only) == 2
    modules = _modules()
    extra = {(room, dst): sorted(m for m in modules[room] if _room(m) == dst and m != one)
             for (room, dst), one in only.items()}
    assert {k: v for k, v in extra.items() if v} == {}


def test_the_page_names_only_files_of_the_repository() -> None:
    named = set(re.findall(r"`([\w/]+\.(?:py|md))`", DOC.read_text()))
    assert len(named) > 15
    missing = [n for n in named
               if not any((base / n).exists() for base in (ROOT, PACKAGE))]
    assert missing == []


MAX_LINES = 400  # a module a newcomer reads in one sitting


def test_no_module_of_the_adapter_or_the_daemon_is_over_400_lines() -> None:
    sizes = {str(path.relative_to(PACKAGE)): len(path.read_text().splitlines())
             for room in ("ibkr", "daemon") for path in (PACKAGE / room).rglob("*.py")}
    assert len(sizes) > 40
    assert {name: n for name, n in sizes.items() if n > MAX_LINES} == {}
