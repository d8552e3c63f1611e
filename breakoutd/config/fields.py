"""Typed readers for single watchlist values, working on the scalar's text.

Numbers are read from the text as written, with Decimal, so a price is exact
and a quoted ``"190"`` is refused rather than guessed at. Booleans are words
(``true``/``false``, also YAML 1.1's ``yes``/``no``/``on``/``off``) and never
count as numbers; a symbol like ``ON`` stays a symbol because the field, not
the YAML resolver, decides what the text means.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Generic, TypeVar

import msgspec

from breakoutd.config.errors import Origin, Problem
from breakoutd.config.safe_yaml import Map, Node, Scalar, Seq
from breakoutd.core.prices import PriceError, to_micros

T = TypeVar("T")

_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
_WHOLE = re.compile(r"[+-]?\d+")
_CLOCK = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?")
_TRUE = frozenset({"true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON"})
_FALSE = frozenset({"false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF"})


class Invalid(Exception):
    """A value that does not fit its field; ``message`` is reported at the field.

    An empty message means the reader already reported its problems itself.
    """

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message


class Located(msgspec.Struct, Generic[T], frozen=True):
    """A typed value with its text as written and where it was written."""

    value: T
    text: str
    at: Origin


class Problems:
    """Collects the problems of one load, so every one is reported at once."""

    def __init__(self) -> None:
        self.items: list[Problem] = []

    def add(self, problem: Problem) -> None:
        """Record a problem."""
        self.items.append(problem)

    def __len__(self) -> int:
        return len(self.items)


def describe(node: Node) -> str:
    """The node's value for a message: the text of a scalar, else its kind."""
    if isinstance(node, Scalar):
        if node.is_null:
            return "nothing"
        return node.text if node.plain else f"the string {node.text!r}"
    return "a list" if isinstance(node, Seq) else "a mapping"


def text_of(node: Node) -> str:
    """Short source text of a value, for later messages."""
    if isinstance(node, Scalar):
        return node.text
    if isinstance(node, Seq):
        return "[" + ", ".join(text_of(i) for i in node.items) + "]"
    return "{...}"


def read_number(node: Node) -> Decimal:
    """A plain decimal number such as ``190``, ``49.02`` or ``-1``."""
    if isinstance(node, Scalar) and node.plain and _NUMBER.fullmatch(node.text):
        return Decimal(node.text)
    if isinstance(node, Scalar) and not node.plain and _NUMBER.fullmatch(node.text.strip()):
        raise Invalid(f"expected a number, got the string {node.text!r} (remove the quotes)")
    raise Invalid(f"expected a number, got {describe(node)}")


def read_price(node: Node) -> int:
    """A price in micro-dollars, exactly as written."""
    value = read_number(node)
    try:
        return to_micros(value)
    except PriceError as exc:
        raise Invalid(f"{text_of(node)} is not an exact price: {exc}") from None


def read_positive_price(node: Node) -> int:
    """A price above zero."""
    micros = read_price(node)
    if micros <= 0:
        raise Invalid(f"{text_of(node)} must be above 0")
    return micros


def read_whole(node: Node) -> int:
    """A whole number written without a decimal point."""
    if isinstance(node, Scalar) and node.plain and _WHOLE.fullmatch(node.text):
        return int(node.text)
    if isinstance(node, Scalar) and node.plain and _NUMBER.fullmatch(node.text):
        raise Invalid(f"expected a whole number, got {node.text}")
    if isinstance(node, Scalar) and not node.plain and _WHOLE.fullmatch(node.text.strip()):
        raise Invalid(f"expected a whole number, got the string {node.text!r} (remove the quotes)")
    raise Invalid(f"expected a whole number, got {describe(node)}")


def read_count(node: Node) -> int:
    """A whole number >= 1."""
    value = read_whole(node)
    if value < 1:
        raise Invalid(f"{value} must be a whole number >= 1")
    return value


def read_positive_decimal(node: Node) -> Decimal:
    """A number above zero."""
    value = read_number(node)
    if value <= 0:
        raise Invalid(f"{text_of(node)} must be above 0")
    return value


def read_bool(node: Node) -> bool:
    """``true`` or ``false``, written plain."""
    if isinstance(node, Scalar) and node.plain and node.text in _TRUE:
        return True
    if isinstance(node, Scalar) and node.plain and node.text in _FALSE:
        return False
    raise Invalid(f"expected true or false, got {describe(node)}")


def read_text(node: Node) -> str:
    """A non-empty single-line string, plain or quoted."""
    if isinstance(node, Scalar) and not node.is_null and node.text.strip():
        if "\n" in node.text.strip():
            raise Invalid("expected a single line of text")
        return node.text.strip()
    raise Invalid(f"expected text, got {describe(node)}")


def read_clock(node: Node) -> int:
    """``HH:MM`` or ``HH:MM:SS`` exchange time, as seconds after 00:00."""
    text = read_text(node) if isinstance(node, Scalar) else ""
    match = _CLOCK.fullmatch(text)
    if match is None:
        raise Invalid(f"expected a time HH:MM or HH:MM:SS, got {describe(node)}")
    hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    if hours > 23 or minutes > 59 or seconds > 59:
        raise Invalid(f"{text} is not a time of day (00:00 to 23:59:59)")
    return hours * 3600 + minutes * 60 + seconds


def read_items(node: Node, what: str) -> tuple[Node, ...]:
    """The items of a list."""
    if not isinstance(node, Seq):
        raise Invalid(f"expected a list of {what}, got {describe(node)}")
    return node.items


def require_map(node: Node, what: str) -> Map:
    """The node as a mapping."""
    if not isinstance(node, Map):
        raise Invalid(f"expected {what}, got {describe(node)}")
    return node
