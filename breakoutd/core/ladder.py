"""The take-profit ladder manager (strategy.md, Exits).

After rung 1 fills the stop moves to the level; after rung 2 fills it moves
to rung 1's price; every fill reduces the stop's quantity. The state is a
plain value so the daemon can persist it and pick it up after a restart.
"""

from __future__ import annotations

from typing import NamedTuple

from breakoutd.core.plans import STOP_LIMIT_OFFSET, OrderPlan
from breakoutd.core.prices import round_to_tick


class LadderState(NamedTuple):
    """Rung prices and quantities, what has filled, and where the stop is."""

    level: int
    prices: tuple[int, ...]
    qtys: tuple[int, ...]
    filled: tuple[int, ...]
    stop: int
    stop_qty: int

    @property
    def stop_limit(self) -> int:
        """The stop's limit price: stop - 0.02, on the tick."""
        return round_to_tick(self.stop - STOP_LIMIT_OFFSET)

    @property
    def done(self) -> bool:
        """True when every share is sold by the rungs."""
        return self.stop_qty == 0


class StopMove(NamedTuple):
    """The stop order's new price and quantity (quantity 0: cancel it)."""

    stop: int
    stop_limit: int
    qty: int


def start_ladder(plan: OrderPlan, level: int, filled_qty: int | None = None) -> LadderState:
    """The ladder for a filled parent (``filled_qty`` when only part filled)."""
    if plan.stop is None or not plan.rungs:
        raise ValueError("a ladder needs rungs and a stop")
    qty = plan.qty if filled_qty is None else filled_qty
    return LadderState(
        level=level,
        prices=tuple(r.price for r in plan.rungs),
        qtys=tuple(r.qty for r in plan.rungs),
        filled=tuple(0 for _ in plan.rungs),
        stop=plan.stop,
        stop_qty=qty,
    )


def on_rung_fill(state: LadderState, rung: int, qty: int) -> tuple[LadderState, StopMove]:
    """Apply a fill of ``qty`` shares on ``rung`` (0-based); return the stop to hold."""
    if qty <= 0 or state.filled[rung] + qty > state.qtys[rung]:
        raise ValueError(f"rung {rung + 1} cannot fill {qty} more shares")
    filled = list(state.filled)
    filled[rung] += qty
    stop = state.stop
    complete = [f >= q for f, q in zip(filled, state.qtys, strict=True)]
    # The stop only ever moves up: rung 1 complete -> level, rung 2 -> rung 1's price.
    if complete[0]:
        stop = max(stop, state.level)
    if len(complete) > 1 and complete[1]:
        stop = max(stop, state.prices[0])
    new = state._replace(filled=tuple(filled), stop=stop, stop_qty=max(state.stop_qty - qty, 0))
    return new, StopMove(new.stop, new.stop_limit, new.stop_qty)
