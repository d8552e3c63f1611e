"""docs/status.md documents exactly the keys the status file has, and its example is real."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tests.daemon.test_status_board import Scenario, entered, first_rung, started

DOC = (Path(__file__).resolve().parents[2] / "docs" / "status.md").read_text()


def _documented() -> set[str]:
    fields = DOC[DOC.index("## Fields"):]
    rows = re.findall(r"^\| `([^`]+)` \|", fields, re.M)
    sections = re.findall(r"^### `([^`]+)`", fields, re.M)
    return set(rows) | set(sections)


def _keys(value: Any, prefix: str = "") -> set[str]:
    """Every key path of a JSON value, ``[]`` standing for each element of a list."""
    out: set[str] = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            out |= {prefix + key} | _keys(inner, prefix + key + ".")
    elif isinstance(value, list):
        for item in value:
            out |= _keys(item, prefix[:-1] + "[].")
    return out


def _full_status(tmp_path: Path) -> dict[str, Any]:
    s = Scenario(tmp_path)
    started(s)
    entered(s)
    first_rung(s)
    s.board.set_config(files=["watchlists/today.yaml"], digest="ab" * 32, reloaded_at=1,
                       result="invalid", errors=["watchlists/today.yaml:3: level: not a price"])
    status = s.status()
    assert status["watchers"] and status["orders"] and status["positions"]
    return status


def test_the_documented_keys_are_the_written_keys(tmp_path: Path) -> None:
    written = _keys(_full_status(tmp_path))
    documented = _documented()
    assert sorted(written - documented) == [], "written but not documented"
    assert sorted(documented - written) == [], "documented but not written"


def test_the_example_in_the_docs_has_the_written_keys(tmp_path: Path) -> None:
    example = json.loads(re.search(r"```json\n(.*?)```", DOC, re.S).group(1))  # type: ignore[union-attr]
    assert _keys(example) == _keys(_full_status(tmp_path))
