"""The top level of one watchlist file: presets, defaults, breakouts, risk, scan."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from msgspec.structs import replace

from breakoutd.config.errors import Origin
from breakoutd.config.fields import Invalid, Problems, read_items, require_map
from breakoutd.config.safe_yaml import Node, Scalar
from breakoutd.config.scan_block import read_scan
from breakoutd.config.schema import (
    BREAKOUT_KEYS,
    DEFAULTS_KEYS,
    RISK_KEYS,
    STRATEGY_KEYS,
    Section,
    Spec,
    read_name,
    read_section,
)

# How specific each layer of a watcher is (see Origin.rank).
RANK_BUILTIN, RANK_PRESET, RANK_DEFAULTS, RANK_BREAKOUT = 0, 1, 2, 3


@dataclass(slots=True)
class FileShape:
    """One file after the shape phase."""

    file: str
    presets: dict[str, Section] = field(default_factory=dict)
    defaults: Section | None = None
    breakouts: list[Section] = field(default_factory=list)
    risk: Section | None = None
    scan: Section | None = None


def _read_presets(node: Node, at: Origin, problems: Problems) -> dict[str, Section]:
    presets: dict[str, Section] = {}
    for key_node, value in require_map(node, "a mapping of preset names").pairs:
        try:
            name = read_name(key_node)
        except Invalid as exc:
            problems.add(at.problem(exc.message))
            continue
        name_at = replace(at.child(name, key_node.line), rank=RANK_PRESET)
        if name in presets:
            first = presets[name].at.line
            problems.add(name_at.problem(f"preset {name!r} is defined twice (first at line {first})"))
            continue
        presets[name] = read_section(value, name_at, STRATEGY_KEYS, problems, "a preset")
    return presets


def _read_defaults(node: Node, at: Origin, problems: Problems) -> Section:
    return read_section(node, replace(at, rank=RANK_DEFAULTS), DEFAULTS_KEYS, problems, "defaults")


def _read_breakouts(node: Node, at: Origin, problems: Problems) -> list[Section]:
    return [
        read_section(item, at.child(i, item.line), BREAKOUT_KEYS, problems, "a breakout")
        for i, item in enumerate(read_items(node, "breakouts"))
    ]


def _read_risk(node: Node, at: Origin, problems: Problems) -> Section:
    return read_section(node, at, RISK_KEYS, problems, "risk")


TOP_KEYS = {
    "presets": Spec(_read_presets, nullable=True),
    "defaults": Spec(_read_defaults, nullable=True),
    "breakouts": Spec(_read_breakouts, nullable=True),
    "risk": Spec(_read_risk, nullable=True),
    "scan": Spec(read_scan, nullable=True),
}


def read_document(root: Node | None, file: str, problems: Problems) -> FileShape:
    """Shape-check a composed file; an empty file is an empty watchlist."""
    shape = FileShape(file)
    if root is None or (isinstance(root, Scalar) and root.is_null):
        return shape
    top = read_section(root, Origin(file, root.line, ""), TOP_KEYS, problems, "a watchlist file")
    values: dict[str, Any] = {k: v.value for k, v in top.values.items()}
    shape.presets = values.get("presets") or {}
    shape.defaults = values.get("defaults")
    shape.breakouts = values.get("breakouts") or []
    shape.risk = values.get("risk")
    shape.scan = values.get("scan")
    return shape
