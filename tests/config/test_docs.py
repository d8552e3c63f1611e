"""The YAML examples in the config README load as documented."""

from __future__ import annotations

import re
from pathlib import Path

from breakoutd.config import load_watchlist_text

README = Path(__file__).resolve().parents[2] / "breakoutd" / "config" / "README.md"


def test_readme_yaml_examples_are_valid() -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks
    wl = load_watchlist_text(blocks[-1], "README.md")
    assert [w.id for w in wl.watchers] == ["BAC@13.50", "ON@70.25"]
    on = wl.watchers[1]
    assert (on.tp, on.params.max_bars) == ((71_000_000, 72_000_000, 73_500_000), None)
    assert wl.presets["open-drive"].max_bars == 30
    for block in blocks[:-1]:
        load_watchlist_text(block, "README.md")
