"""breakoutd.core stays pure: only the stdlib's pure modules and msgspec."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[2] / "breakoutd" / "core"
ALLOWED = {
    "__future__", "collections", "dataclasses", "decimal", "enum", "fractions", "functools",
    "operator", "typing", "msgspec", "breakoutd.core",
}


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names.append("." * node.level + (node.module or ""))
    return names


@pytest.mark.parametrize("path", sorted(CORE.glob("*.py")), ids=lambda p: p.name)
def test_core_module_imports_only_pure_modules(path: Path) -> None:
    for name in _imports(path):
        assert not name.startswith("."), f"{path.name}: use absolute imports ({name})"
        ok = any(name == a or name.startswith(a + ".") for a in ALLOWED)
        assert ok, f"{path.name} imports {name}: the core must stay pure (DESIGN.md)"


def test_the_purity_check_catches_an_impure_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import asyncio\nfrom breakoutd.ibkr import x\n")
    assert _imports(bad) == ["asyncio", "breakoutd.ibkr"]
    assert not any(n == a or n.startswith(a + ".") for n in _imports(bad) for a in ALLOWED)
