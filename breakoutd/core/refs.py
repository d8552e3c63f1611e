"""Order refs: the once-only key of an entry at the broker, built and read back.

The entry carries ``bo:YYYYMMDD:session:watcher_id`` (:func:`order_ref`),
take-profit rung *n* (1-based) ``{ref}:tp{n}``, the stop ``{ref}:sl`` and the
sale that flattens the position (the operator's or the kill switch's)
``{ref}:fx``. A sliced entry (``slices``) has no order with the bare ref: slice
*k* is ``{ref}:s{k}``, role entry, rung *k* (:func:`breakoutd.core.slicing.slice_ref`).
Watcher ids never contain ``:`` (the watchlist schema forbids it) but a scanned
watcher's ``scan:SYMBOL`` (:mod:`breakoutd.core.scan`), whose two parts are
read as one id, so a ref parses back unambiguously.

The refs are what a restart reconciles by and what the once-only guard
refuses, so they are the one part of an order both the live router and the
backtest must spell the same: they live here, beside the plans that use them.
"""

from __future__ import annotations

from typing import Final, NamedTuple

from breakoutd.core.events import OrderRole

# The roles of an entry's orders (core.events.OrderRole), named once.
ENTRY: Final = "entry"
TAKE_PROFIT: Final = "take_profit"
STOP: Final = "stop"
FLATTEN: Final = "flatten"


class RefParts(NamedTuple):
    """An order ref split into the entry's ref, the order's role and rung."""

    base: str
    role: OrderRole
    rung: int  # 1-based take-profit rung or slice; 0 for an unsliced entry and the stop


def order_ref(day: str, session: str, watcher_id: str) -> str:
    """The deterministic, once-only key of a watcher's entry at the broker."""
    return f"bo:{day}:{session}:{watcher_id}"


def child_ref(ref: str, role: OrderRole, rung: int = 0) -> str:
    """The orderRef of one order of an entry."""
    if role == TAKE_PROFIT:
        return f"{ref}:tp{rung}"
    if role == FLATTEN:
        return f"{ref}:fx"
    return f"{ref}:sl" if role == STOP else ref


def parse_ref(text: str) -> RefParts | None:
    """Split an orderRef of ours (``bo:day:session:id[:tpN|:sl|:fx|:sK]``); None for others."""
    parts = _joined_scan_id(text.split(":"))
    if len(parts) not in (4, 5) or parts[0] != "bo" or not all(parts[:4]):
        return None
    base = ":".join(parts[:4])
    if len(parts) == 4:
        return RefParts(base, ENTRY, 0)
    suffix = parts[4]
    if suffix == "sl":
        return RefParts(base, STOP, 0)
    if suffix == "fx":
        return RefParts(base, FLATTEN, 0)
    if suffix.startswith("tp") and suffix[2:].isdigit() and int(suffix[2:]) >= 1:
        return RefParts(base, TAKE_PROFIT, int(suffix[2:]))
    if suffix.startswith("s") and suffix[1:].isdigit() and int(suffix[1:]) >= 1:
        return RefParts(base, ENTRY, int(suffix[1:]))  # slice k of a sliced entry
    return None


def _joined_scan_id(parts: list[str]) -> list[str]:
    """``bo:day:session:scan:SYM...`` with ``scan:SYM`` as the one id part it is."""
    # A symbol starts with a capital; the suffixes (tpN, sl, fx, sK) are lower case.
    if len(parts) >= 5 and parts[3] == "scan" and parts[4][:1].isupper():
        return [*parts[:3], f"scan:{parts[4]}", *parts[5:]]
    return parts


def day_prefix(day: str) -> str:
    """The start of every entry ref of a trading day (``day`` as ``YYYYMMDD``)."""
    return f"bo:{day}:"


def watcher_of(ref: str) -> str:
    """The watcher id of an entry ref."""
    return ref.split(":", 3)[3]
