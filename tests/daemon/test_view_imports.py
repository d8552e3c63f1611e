"""The daemon's views of the event catalog read events, not the broker adapter.

The status file, its replay and the console are rebuilt from journals with no
gateway in sight: what they know of orders (roles, which statuses end one)
comes from the catalog, so they import nothing of breakoutd.ibkr."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

DAEMON = Path(__file__).resolve().parents[2] / "breakoutd" / "daemon"
VIEWS = ("status_model.py", "status.py", "status_replay.py", "console.py")


@pytest.mark.parametrize("name", VIEWS)
def test_a_view_of_the_catalog_imports_nothing_of_the_broker_adapter(name: str) -> None:
    tree = ast.parse((DAEMON / name).read_text(), name)
    imported = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    imported += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert [m for m in imported if m == "breakoutd.ibkr" or m.startswith("breakoutd.ibkr.")] == []
