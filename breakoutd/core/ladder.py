"""The take-profit ladder manager (strategy.md, Exits).

After rung 1 fills the stop moves to the level; after rung 2 fills it moves
to rung 1's price; every fill reduces the stop's quantity. The state is a
plain value so the daemon can persist it and pick it up after a restart.

Exit sizes at the broker: the exits are children of the entry in one OCA group
of type 2 ("reduce with block"): every fill of one reduces each sibling by the
filled shares, and IB blocks siblings while one executes (overfill
protection). Rung *n* is sent for the *cumulative* quantity ``C_n = q_1 + ...
+ q_n`` (:func:`exit_thresholds`) and the stop for the whole quantity, so
whatever fills in whatever order, each exit's remaining size is ``C_n - sold``
and never more than the position: rungs do not cancel each other, the stop
shrinks with every fill at the broker, the last fill cancels what is left, and
none of it needs the daemon. A bracket is the one-rung case of the same rule.
The functions after :func:`on_rung_fill` read a ladder back from those sizes.
"""

from __future__ import annotations

from typing import NamedTuple

from breakoutd.core.plans import STOP_LIMIT_OFFSET, OrderPlan
from breakoutd.core.prices import TICK_ABOVE_DOLLAR, round_to_tick


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


def exit_thresholds(plan: OrderPlan) -> tuple[int, ...]:
    """Cumulative rung sizes ``C_n``: what rung n is sent for (see module doc)."""
    total, out = 0, []
    for rung in plan.rungs:
        total += rung.qty
        out.append(total)
    return tuple(out)


def ladder_for(level: int, prices: tuple[int, ...], thresholds: tuple[int, ...],
               bought: int, stop: int) -> LadderState:
    """The ladder of ``bought`` shares: rung sizes from the thresholds capped at the position.

    Rungs the position cannot reach (a partly filled entry) are dropped from
    the tail, so a rung of zero shares never counts as complete.
    """
    qtys, prev = [], 0
    for c in thresholds:
        cap = min(c, bought)
        if cap <= prev:
            break
        qtys.append(cap - prev)
        prev = cap
    n = len(qtys)
    return LadderState(level=level, prices=prices[:n], qtys=tuple(qtys), filled=(0,) * n,
                       stop=stop, stop_qty=bought)


def credit_rungs(state: LadderState, qty: int) -> tuple[LadderState, StopMove]:
    """Apply ``qty`` shares sold by any rung, lowest unfinished rung first.

    With cumulative exit sizes (module doc) the first ``q_1`` shares the rungs
    sell complete rung 1, whichever rung order they came from.
    """
    left = qty
    for i, (want, got) in enumerate(zip(state.qtys, state.filled, strict=True)):
        take = min(want - got, left)
        if take > 0:
            state, _ = on_rung_fill(state, i, take)
            left -= take
    if left > 0:  # more than the ladder holds: only the stop's size is left to track
        state = state._replace(stop_qty=max(state.stop_qty - left, 0))
    return state, StopMove(state.stop, state.stop_limit, state.stop_qty)


def rebuild_ladder(level: int, rungs: list[tuple[int, int | None]], bought: int,
                   rung_sold: int, sold: int, stop: int) -> LadderState:
    """The ladder as the broker's orders show it after a restart.

    ``rungs`` holds each rung's price and its open remaining size (None once
    the order is done). An open rung's threshold is ``remaining + sold`` (the
    OCA invariant). Rungs finish in order (rung n is done once ``sold >= C_n``),
    so the done ones lead; each gets one share of the rungs' sales at least,
    which makes it complete. The stop starts at the broker's and moves up if a
    rung filled before the daemon could move it.
    """
    done = next((i for i, (_, r) in enumerate(rungs) if r is not None), len(rungs))
    thresholds, floor = [], 0
    for i, (_, remaining) in enumerate(rungs):
        if i < done:
            c = max(rung_sold - (done - 1 - i), i + 1)
        else:
            c = sold + (remaining or 0)
        floor = max(floor, c)
        thresholds.append(floor)
    state = ladder_for(level, tuple(p for p, _ in rungs), tuple(thresholds), bought, stop)
    if rung_sold:
        state, _ = credit_rungs(state, rung_sold)
    return state._replace(stop_qty=max(bought - sold, 0))


def breakeven_level(avg_price: int | None, stop: int) -> int:
    """Stand-in level when the watcher's is unknown: the entry price, down to the cent."""
    if avg_price is None:
        return stop
    return max(stop, avg_price // TICK_ABOVE_DOLLAR * TICK_ABOVE_DOLLAR)
