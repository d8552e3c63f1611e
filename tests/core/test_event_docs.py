"""Every event of the catalog is documented in docs/events.md, with its fields."""

from __future__ import annotations

import re
from pathlib import Path

import msgspec
import pytest

from breakoutd.core.events import CORE_EVENTS, Event

DOC = (Path(__file__).resolve().parents[2] / "docs" / "events.md").read_text()


def _section(name: str) -> str:
    match = re.search(rf"^### {name}\n(.*?)(?=^#|\Z)", DOC, re.S | re.M)
    return match.group(1) if match else ""


@pytest.mark.parametrize("event", CORE_EVENTS, ids=lambda e: e.__name__)
def test_event_is_documented_with_every_field(event: type[Event]) -> None:
    text = _section(event.__name__)
    assert text, f"docs/events.md has no section for {event.__name__}"
    for field in msgspec.structs.fields(event):
        if field.name != "at":
            assert f"`{field.name}`" in text, f"{event.__name__}.{field.name} is not documented"
