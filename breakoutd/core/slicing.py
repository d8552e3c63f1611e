"""The slice schedule of an entry (strategy.md, Position management: slices).

The entry is sent as N orders, the quantity split evenly with the remainder
to the first: the first at the trigger T, slice k at ``T + k * every``
(k from 0), each priced like the entry at its own instant. A slice whose
reference would break the exits (at or above the first take-profit, at or
below the stop) is not sent, nor are later ones. Slice k+1's orderRef is
the entry's with ``:s{k+1}``, so each is a once-only key of its own.
"""

from __future__ import annotations

from typing import NamedTuple

from breakoutd.core.params import Slices

NS_PER_SECOND = 1_000_000_000


class Slice(NamedTuple):
    """One slice: its number (1-based), when it is due, its shares and its orderRef."""

    number: int
    at: int
    qty: int
    order_ref: str


def slice_shares(qty: int, count: int) -> tuple[int, ...]:
    """``qty`` in ``count`` even parts, the remainder to the first."""
    if count < 1:
        raise ValueError("a slice count is at least 1")
    shares = [qty // count] * count
    shares[0] += qty - sum(shares)
    return tuple(shares)


def slice_ref(entry_ref: str, number: int) -> str:
    """The orderRef of slice ``number`` (1-based): ``...:sK``."""
    return f"{entry_ref}:s{number}"


def entry_ref_of(order_ref: str) -> tuple[str, int]:
    """The entry's orderRef and the slice number (0: not a slice) of an orderRef."""
    head, sep, tail = order_ref.rpartition(":s")
    if sep and tail.isdigit() and head:
        return head, int(tail)
    return order_ref, 0


def slice_schedule(qty: int, slices: Slices, trigger_at: int, entry_ref: str
                   ) -> tuple[Slice, ...]:
    """Every slice of an entry of ``qty`` shares triggered at ``trigger_at``."""
    step = slices.every * NS_PER_SECOND
    return tuple(
        Slice(k + 1, trigger_at + k * step, shares, slice_ref(entry_ref, k + 1))
        for k, shares in enumerate(slice_shares(qty, slices.count))
    )


def slice_keeps_exits(reference: int, stop: int | None, first_tp: int | None) -> bool:
    """True when a slice priced at ``reference`` leaves the exits on the right side."""
    if stop is not None and reference <= stop:
        return False
    return first_tp is None or reference < first_tp
