"""Readers for the position-management keys (strategy.md, Position management).

``breakeven``, ``trail``, ``trail_after``, ``exit_at``, ``max_hold``,
``slices``, ``sl_below`` and ``tp_r``: the shape phase of each key. Checks
that need other keys (a stop for R, the sessions for ``exit_at``, the
quantity for ``slices``) are in :mod:`breakoutd.config.management_check`.
"""

from __future__ import annotations

import re
from decimal import Decimal

from breakoutd.config.errors import Origin
from breakoutd.config.fields import (
    Invalid,
    Problems,
    describe,
    read_count,
    read_items,
    read_number,
    read_price,
    read_text,
    require_map,
    text_of,
)
from breakoutd.config.safe_yaml import Node, Scalar
from breakoutd.core.params import Slices

_DURATION = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
SLICE_KEYS = ("count", "every")


def read_r(node: Node) -> Decimal:
    """A multiple of R above zero, such as ``1`` or ``1.5``."""
    value = read_number(node)
    if value <= 0:
        raise Invalid(f"{text_of(node)} must be a multiple of R above 0")
    return value


def read_r_at_least_zero(node: Node) -> Decimal:
    """A multiple of R >= 0 (``trail_after: 0`` trails from the fill)."""
    value = read_number(node)
    if value < 0:
        raise Invalid(f"{text_of(node)} must be a multiple of R >= 0")
    return value


def read_distance_above_zero(node: Node) -> int:
    """A positive price distance in micros (``trail: 0.10``, ``sl_below: 0.30``)."""
    try:
        micros = read_price(node)
    except Invalid as exc:
        raise Invalid(f"expected a positive price distance such as 0.10: {exc.message}") from None
    if micros <= 0:
        raise Invalid(f"{text_of(node)} must be a positive price distance such as 0.10")
    return micros


def read_duration(node: Node) -> int:
    """A duration such as ``90s``, ``30m``, ``2h`` or ``1h30m``, in seconds above zero."""
    text = read_text(node) if isinstance(node, Scalar) and not node.is_null else ""
    match = _DURATION.fullmatch(text.replace(" ", "")) if text else None
    if match is None or not any(match.groups()):
        raise Invalid(f"expected a duration such as 90s, 30m, 2h or 1h30m, got {describe(node)}")
    hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    total = hours * 3600 + minutes * 60 + seconds
    if total <= 0:
        raise Invalid(f"{text} must be longer than 0 seconds")
    return total


def read_tp_r(node: Node, at: Origin, problems: Problems) -> tuple[Decimal, ...]:
    """One multiple of R or an ascending list of them (a ladder in R)."""
    if isinstance(node, Scalar):
        return (read_r(node),)
    items = read_items(node, "multiples of R")
    if not items:
        raise Invalid("expected at least one multiple of R; leave tp_r out for no take-profit")
    out: list[Decimal] = []
    failed = False
    for i, item in enumerate(items):
        item_at = at.child(i, item.line)
        try:
            value = read_r(item)
        except Invalid as exc:
            problems.add(item_at.problem(exc.message))
            failed = True
            continue
        if out and value <= out[-1]:
            problems.add(item_at.problem(
                f"tp_r must ascend: {text_of(item)} is not above {format(out[-1], 'f')}"))
            failed = True
        out.append(value)
    if failed:
        raise Invalid()
    return tuple(out)


def read_slices(node: Node, at: Origin, problems: Problems) -> Slices:
    """``{count: N, every: SECONDS}``; ``every`` is required when N > 1."""
    mapping = require_map(node, "a mapping {count: N, every: SECONDS}")
    values: dict[str, int] = {}
    before = len(problems)
    for key_node, value in mapping.pairs:
        key = key_node.text if isinstance(key_node, Scalar) else ""
        key_at = at.child(key or "?", key_node.line)
        if key not in SLICE_KEYS:
            problems.add(key_at.problem(f"unknown key {key!r}; expected one of: count, every"))
            continue
        if key in values:
            problems.add(key_at.problem(f"duplicate key {key!r}"))
            continue
        try:
            values[key] = read_count(value)
        except Invalid as exc:
            what = "seconds between slices" if key == "every" else "the number of slices"
            problems.add(key_at.problem(f"{exc.message} ({what})"))
    if len(problems) > before:
        raise Invalid()
    if "count" not in values:
        raise Invalid("slices needs count (the number of orders)")
    if values["count"] > 1 and "every" not in values:
        raise Invalid(f"slices needs every (seconds between the {values['count']} orders)")
    return Slices(values["count"], values.get("every", 0))
