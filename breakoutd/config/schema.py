"""Phase one, shape: every key known, every value of the right type.

Each section of a file becomes a :class:`Section` of :class:`Located` values;
keys whose value was wrong are remembered in ``bad`` so that the cross-field
phase skips checks that would only repeat the same mistake.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from breakoutd.config.errors import Origin
from breakoutd.config.fields import (
    Invalid,
    Located,
    Problems,
    describe,
    read_bool,
    read_clock,
    read_count,
    read_items,
    read_number,
    read_positive_decimal,
    read_positive_price,
    read_price,
    read_text,
    require_map,
    text_of,
)
from breakoutd.config.management_fields import (
    read_distance_above_zero,
    read_duration,
    read_r,
    read_r_at_least_zero,
    read_slices,
    read_tp_r,
)
from breakoutd.config.safe_yaml import Map, Node, Scalar
from breakoutd.core.params import EntryKind, FastSchedule, LevelName, OnHalt, Rule, Session

Reader = Callable[[Node, Origin, Problems], Any]

_SESSION_ORDER = tuple(Session)
_BAR_MINUTES = (1, 2, 3, 5, 15)
_BAR = re.compile(r"(\d+) ?min")
_TIFS = ("DAY", "GTC", "IOC")
_ENTRIES = tuple(e.value for e in EntryKind)
_ON_HALT = tuple(h.value for h in OnHalt)
_RULES = tuple(r.value for r in Rule)
_LEVEL_NAMES = tuple(n.value for n in LevelName)
_OPENING_RANGES = (1, 5, 15, 30)


@dataclass(slots=True)
class Section:
    """One mapping of a file: typed values by key, and the keys that were wrong."""

    at: Origin
    values: dict[str, Located[Any]] = field(default_factory=dict)
    bad: set[str] = field(default_factory=set)
    broken: bool = False  # not a mapping at all: nothing in it can be checked


@dataclass(frozen=True, slots=True)
class Spec:
    """How to read one key: its reader and whether ``null`` (unset) is allowed."""

    read: Reader
    nullable: bool = False


def _simple(read: Callable[[Node], Any]) -> Reader:
    return lambda node, at, problems: read(node)


def _choice(node: Node, options: tuple[str, ...], what: str) -> str:
    text = read_text(node) if isinstance(node, Scalar) and not node.is_null else ""
    if text in options:
        return text
    raise Invalid(f"expected {what} ({' | '.join(options)}), got {describe(node)}{hint(text, options)}")


def hint(word: str, options: tuple[str, ...] | list[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest option, or nothing."""
    by_lower = {o.lower(): o for o in options}
    close = difflib.get_close_matches(word.lower(), list(by_lower), n=1, cutoff=0.6) if word else []
    return f" (did you mean {by_lower[close[0]]!r}?)" if close else ""


def read_sessions(node: Node, at: Origin, problems: Problems) -> tuple[Session, ...]:
    """A non-empty list of distinct, adjacent sessions, in the day's order."""
    names = tuple(s.value for s in _SESSION_ORDER)
    found: list[Session] = []
    before = len(problems)
    for i, item in enumerate(read_items(node, "sessions")):
        try:
            session = Session(_choice(item, names, "a session"))
        except Invalid as exc:
            problems.add(at.child(i, item.line).problem(exc.message))
            continue
        if session in found:
            problems.add(at.child(i, item.line).problem(f"{session.value} is listed twice"))
        found.append(session)
    if len(problems) > before:
        raise Invalid()
    if not found:
        raise Invalid("expected at least one session (premarket, rth, afterhours)")
    order = sorted({_SESSION_ORDER.index(s) for s in found})
    if order[-1] - order[0] != len(order) - 1:
        # The arming window runs from the first session to the last, so a gap would be armed anyway.
        missing = _SESSION_ORDER[order[0] + 1].value
        raise Invalid(f"sessions must be adjacent: {text_of(node)} skips {missing}")
    return tuple(_SESSION_ORDER[i] for i in order)


def read_bar(node: Node) -> int:
    """A close-rule bar size such as ``1 min`` or ``5min``, in seconds."""
    text = node.text.strip() if isinstance(node, Scalar) else ""
    match = _BAR.fullmatch(text)
    if match is None or int(match.group(1)) not in _BAR_MINUTES:
        sizes = ", ".join(f"{m} min" for m in _BAR_MINUTES)
        raise Invalid(f"expected a bar size ({sizes}), got {describe(node)}")
    return int(match.group(1)) * 60


def read_fast(node: Node, at: Origin, problems: Problems) -> FastSchedule | None:
    """``true`` (default schedule), ``false`` (off) or a mapping overriding the schedule."""
    if isinstance(node, Scalar):
        try:
            return FastSchedule() if read_bool(node) else None
        except Invalid:
            raise Invalid(f"expected true, false or a mapping of {', '.join(FAST_KEYS)}, "
                          f"got {describe(node)}") from None
    before = len(problems)
    section = read_section(node, at, FAST_KEYS, problems, "fast")
    if len(problems) > before:
        raise Invalid()
    values = {k: v.value for k, v in section.values.items()}
    schedule = FastSchedule(**values)
    for name in ("distance", "spread"):
        start, end = getattr(schedule, f"{name}_start"), getattr(schedule, f"{name}_end")
        if not start >= end >= 0:
            where = section.values.get(f"{name}_start") or section.values.get(f"{name}_end")
            place = where.at if where else at
            problems.add(place.problem(f"{name} needs start >= end >= 0, got start {start}, end {end}"))
    if len(problems) > before:
        raise Invalid()
    return schedule


def _read_step(node: Node) -> int:
    value = read_count(node)
    if value > 59:
        raise Invalid(f"step {value} must be 1 to 59 seconds")
    return value


def _read_cents(node: Node) -> Decimal:
    value = read_number(node)
    if value < 0:
        raise Invalid(f"{text_of(node)} cents must be >= 0")
    return value


def _read_non_negative(node: Node) -> Decimal:
    value = read_number(node)
    if value < 0:
        raise Invalid(f"{text_of(node)} must be >= 0")
    return value


def _read_distance(node: Node) -> int:
    """A price distance >= 0, in micros (need not be on the tick: it is added to the level)."""
    micros = read_price(node)
    if micros < 0:
        raise Invalid(f"{text_of(node)} must be a price distance >= 0")
    return micros


def read_level(node: Node) -> int | LevelName:
    """A price above zero, or the name of a level taken from the market."""
    if isinstance(node, Scalar) and not node.is_null and node.text.strip() in _LEVEL_NAMES:
        return LevelName(node.text.strip())
    try:
        return read_positive_price(node)
    except Invalid as exc:
        text = node.text.strip() if isinstance(node, Scalar) and not node.is_null else ""
        close = hint(text, _LEVEL_NAMES)
        if close or "_" in text:
            names = " | ".join(_LEVEL_NAMES)
            raise Invalid(f"{exc.message}; a named level is one of {names}{close}") from None
        raise


def _read_offset(node: Node) -> int:
    """``level_offset``: a price distance, in micros, that may be negative."""
    return read_price(node)


def _read_opening_range(node: Node) -> int:
    minutes = read_count(node)
    if minutes not in _OPENING_RANGES:
        raise Invalid(f"opening_range {minutes} must be one of "
                      f"{', '.join(str(m) for m in _OPENING_RANGES)} (minutes)")
    return minutes


def _read_tif(node: Node) -> str:
    text = node.text.strip().upper() if isinstance(node, Scalar) and not node.is_null else ""
    if text in _TIFS:
        return text
    raise Invalid(f"expected a time in force ({' | '.join(_TIFS)}), got {describe(node)}")


def read_tp(node: Node, at: Origin, problems: Problems) -> tuple[Located[int], ...]:
    """One take-profit price, or a list of them (a ladder)."""
    if isinstance(node, Scalar):
        return (Located(read_positive_price(node), node.text, at),)
    items = read_items(node, "prices")
    if not items:
        raise Invalid("expected at least one price; leave tp out for no take-profit")
    return _located_list(items, at, problems, read_positive_price)


def read_split(node: Node, at: Origin, problems: Problems) -> tuple[Located[Decimal], ...]:
    """The ladder's parts, one per rung."""
    return _located_list(read_items(node, "parts"), at, problems, read_positive_decimal)


def _located_list(
    items: tuple[Node, ...], at: Origin, problems: Problems, read: Callable[[Node], Any]
) -> tuple[Located[Any], ...]:
    out: list[Located[Any]] = []
    failed = False
    for i, item in enumerate(items):
        item_at = at.child(i, item.line)
        try:
            out.append(Located(read(item), text_of(item), item_at))
        except Invalid as exc:
            problems.add(item_at.problem(exc.message))
            failed = True
    if failed:
        raise Invalid()
    return tuple(out)


_SYMBOL = re.compile(r"[A-Z][A-Z0-9.]{0,9}")
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,39}")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,39}")


def read_symbol(node: Node) -> str:
    """An exchange symbol: capital letters, digits and dots, such as ``BRK.B``."""
    text = read_text(node)
    if not _SYMBOL.fullmatch(text):
        upper = f" (did you mean {text.upper()!r}?)" if _SYMBOL.fullmatch(text.upper()) else ""
        raise Invalid(f"{text!r} is not a symbol: capital letters, digits and '.', "
                      f"up to 10, starting with a letter{upper}")
    return text


def read_id(node: Node) -> str:
    """A watcher id: up to 40 letters, digits and ``. _ @ -``."""
    text = read_text(node)
    if not _ID.fullmatch(text):
        raise Invalid(f"{text!r} is not an id: up to 40 letters, digits and . _ @ -")
    return text


def read_name(node: Node) -> str:
    """A preset name: letters, digits, ``_`` and ``-``."""
    text = read_text(node)
    if not _NAME.fullmatch(text):
        raise Invalid(f"{text!r} is not a preset name: letters, digits, _ and -")
    return text


STRATEGY_KEYS: Mapping[str, Spec] = {
    "sessions": Spec(read_sessions),
    "not_before": Spec(_simple(read_clock), nullable=True),
    "not_after": Spec(_simple(read_clock), nullable=True),
    "entry": Spec(_simple(lambda n: EntryKind(_choice(n, _ENTRIES, "an entry")))),
    "bar": Spec(_simple(read_bar)),
    "fast": Spec(read_fast),
    "quote_age": Spec(_simple(read_positive_decimal)),
    "quote_warmup": Spec(_simple(_read_non_negative)),
    "max_bars": Spec(_simple(read_count), nullable=True),
    "rth": Spec(_simple(read_bool)),
    "tif": Spec(_simple(_read_tif)),
    "risk_usd": Spec(_simple(read_positive_decimal), nullable=True),
    "max_chase": Spec(_simple(_read_distance), nullable=True),
    "rule": Spec(_simple(lambda n: Rule(_choice(n, _RULES, "a rule")))),
    "volume_mult": Spec(_simple(read_positive_decimal)),
    "volume_lookback": Spec(_simple(read_count)),
    "retest_within": Spec(_simple(_read_distance)),
    "opening_range": Spec(_simple(_read_opening_range)),
    "level_offset": Spec(_simple(_read_offset)),
    "breakeven": Spec(_simple(read_r), nullable=True),
    "trail": Spec(_simple(read_distance_above_zero), nullable=True),
    "trail_after": Spec(_simple(read_r_at_least_zero), nullable=True),
    "exit_at": Spec(_simple(read_clock), nullable=True),
    "max_hold": Spec(_simple(read_duration), nullable=True),
    "slices": Spec(read_slices, nullable=True),
    "sl_below": Spec(_simple(read_distance_above_zero), nullable=True),
    "tp_r": Spec(read_tp_r, nullable=True),
}
FAST_KEYS: Mapping[str, Spec] = {
    "distance_start": Spec(_simple(_read_cents)),
    "distance_end": Spec(_simple(_read_cents)),
    "spread_start": Spec(_simple(_read_cents)),
    "spread_end": Spec(_simple(_read_cents)),
    "step": Spec(_simple(_read_step)),
}
_PER_WATCHER: Mapping[str, Spec] = {
    "preset": Spec(_simple(read_name), nullable=True),
    "qty": Spec(_simple(read_count), nullable=True),
    "enabled": Spec(_simple(read_bool)),
}
DEFAULTS_KEYS: Mapping[str, Spec] = {**_PER_WATCHER, **STRATEGY_KEYS}
BREAKOUT_KEYS: Mapping[str, Spec] = {
    "id": Spec(_simple(read_id), nullable=True),
    "symbol": Spec(_simple(read_symbol)),
    "level": Spec(_simple(read_level)),
    "tp": Spec(read_tp, nullable=True),
    "tp_split": Spec(read_split, nullable=True),
    "sl": Spec(_simple(read_positive_price), nullable=True),
    **DEFAULTS_KEYS,
}
RISK_KEYS: Mapping[str, Spec] = {
    "max_positions": Spec(_simple(read_count), nullable=True),
    "max_daily_loss_usd": Spec(_simple(read_positive_decimal), nullable=True),
    "max_notional_usd": Spec(_simple(read_positive_decimal), nullable=True),
    "max_entries_per_day": Spec(_simple(read_count), nullable=True),
    "max_consecutive_losses": Spec(_simple(read_count), nullable=True),
    "on_halt": Spec(_simple(lambda n: OnHalt(_choice(n, _ON_HALT, "an action on a halt")))),
}
TOP_KEYS = ("presets", "defaults", "breakouts", "risk", "scan")
# Words operators reach for that difflib would not map to our key.
_SYNONYMS = {
    "stop": "sl", "stop_loss": "sl", "stoploss": "sl", "take_profit": "tp", "target": "tp",
    "targets": "tp", "quantity": "qty", "shares": "qty", "size": "qty", "price": "level",
    "ticker": "symbol", "session": "sessions", "disabled": "enabled",
}
_ALL_KEYS = frozenset(BREAKOUT_KEYS) | frozenset(RISK_KEYS) | frozenset(TOP_KEYS)


def _unknown_key(key: str, spec: Mapping[str, Spec], where: str) -> str:
    if key == "<<":
        return "merge keys (<<) are not supported; use a preset"
    synonym = _SYNONYMS.get(key.lower())
    if synonym in spec:
        return f"unknown key {key!r} (did you mean {synonym!r}?)"
    close = hint(key, list(spec))
    if close:
        return f"unknown key {key!r}{close}"
    if key in _ALL_KEYS:
        return f"{key!r} is not allowed in {where}"
    return f"unknown key {key!r}; expected one of: {', '.join(spec)}"


def read_section(
    node: Node, at: Origin, spec: Mapping[str, Spec], problems: Problems, where: str
) -> Section:
    """Read a mapping whose keys must all be in ``spec``; problems go to ``problems``."""
    section = Section(at)
    try:
        mapping: Map = require_map(node, f"a mapping for {where}")
    except Invalid as exc:
        problems.add(at.problem(exc.message))
        section.broken = True
        return section
    seen: dict[str, int] = {}
    for key_node, value in mapping.pairs:
        if not (isinstance(key_node, Scalar) and not key_node.is_null and key_node.text):
            problems.add(at.problem(f"keys must be names, got {describe(key_node)}"))
            continue
        key, key_at = key_node.text, at.child(key_node.text, key_node.line)
        if key in seen:
            problems.add(key_at.problem(f"duplicate key {key!r} (first at line {seen[key]})"))
            section.bad.add(key)
            continue
        seen[key] = key_node.line
        if key not in spec:
            problems.add(key_at.problem(_unknown_key(key, spec, where)))
            continue
        _read_value(section, key, value, key_at, spec[key], problems)
    return section


def _read_value(
    section: Section, key: str, node: Node, at: Origin, spec: Spec, problems: Problems
) -> None:
    if spec.nullable and isinstance(node, Scalar) and node.is_null:
        section.values[key] = Located(None, "null", at)
        return
    try:
        section.values[key] = Located(spec.read(node, at, problems), text_of(node), at)
    except Invalid as exc:
        if exc.message:
            problems.add(at.problem(exc.message))
        section.bad.add(key)
