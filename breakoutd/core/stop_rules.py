"""The stop after the fill: breakeven, trail and the ladder (strategy.md, Position management).

R is ``fill - stop`` with the average fill price and the initial stop. Each
rule is a pure function from the fill, R and the highest print since the
fill to a proposed stop (or None: the rule does not ask yet). Every proposal
is on the tick; the highest proposal wins, together with the ladder's, and
the stop never moves down. The daemon sends a move to the broker when it is
at least one tick above what the broker holds and a second has passed since
the last modify of that order; the backtest calls the same functions.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal
from enum import StrEnum
from typing import NamedTuple

from breakoutd.core.params import StrategyParams
from breakoutd.core.prices import round_to_tick, tick_size

MODIFY_INTERVAL_NS = 1_000_000_000  # at most one modify of a stop order per second


class StopRule(StrEnum):
    """Which rule put the stop where it is."""

    INITIAL = "initial"
    LADDER = "ladder"
    BREAKEVEN = "breakeven"
    TRAIL = "trail"


class StopProposal(NamedTuple):
    """A stop price one rule asks for."""

    price: int
    rule: StopRule


class ManagedStop(NamedTuple):
    """A position's stop as the rules see it: a plain value, journalled and rebuilt on restart."""

    fill: int  # average fill price, micros (may be off the tick)
    initial: int  # the initial stop; R = fill - initial
    highest: int  # the highest print since the fill (0: none yet)
    stop: int  # where the stop is (on the tick)
    rule: StopRule  # the rule that put it there

    @property
    def risk(self) -> int:
        """R, the risk per share, in micros."""
        return self.fill - self.initial


def start_stop(fill: int, initial: int) -> ManagedStop:
    """The stop of a fresh fill: the initial stop, and no print since the fill yet (0).

    The fill is our own trade, not a print of the market: a trail counts
    only what the market printed after it.
    """
    if initial >= fill:
        raise ValueError("R needs an initial stop below the fill")
    return ManagedStop(fill, initial, 0, initial, StopRule.INITIAL)


def resume_stop(params: StrategyParams, fill: int, initial: int, held: int,
                moves: list[StopProposal]) -> ManagedStop:
    """The stop after a restart: where the broker holds it, and what the moves vouch for.

    The prints since the fill are not kept, but each journalled move (oldest
    first) proves one: a trail move to S was asked by a print of at least
    ``S + D`` less half a tick, a breakeven move by one at ``fill + X * R``
    with the fill of then (at least S less half a tick, when later slices have
    moved the average since).
    The highest of those is the highest print since the fill from then on, so
    a trail goes on from where it was, never lower, and a move the broker does
    not show (lost with the process) is asked for again at the next print.
    The rule is the last move's at the broker's price, else the initial stop's.
    """
    highest = 0
    for price, rule in moves:
        if rule is StopRule.TRAIL and params.trail is not None:
            highest = max(highest, price + params.trail - tick_size(price) // 2)
        elif rule is StopRule.BREAKEVEN and params.breakeven is not None:
            # The fill then: today's, unless later fills (slices) moved its average.
            then = fill if round_to_tick(fill) == price else price - tick_size(price) // 2
            highest = max(highest, r_threshold(then, max(then - initial, 0), params.breakeven))
    rule = next((r for p, r in reversed(moves) if p == held), StopRule.INITIAL)
    return ManagedStop(fill, initial, highest, held, rule)


def r_threshold(fill: int, risk: int, multiple: Decimal) -> int:
    """The lowest whole-micro print at or above ``fill + multiple * R``."""
    exact = Decimal(fill) + multiple * Decimal(risk)
    return int(exact.to_integral_value(rounding=ROUND_CEILING))


def breakeven_proposal(fill: int, risk: int, multiple: Decimal, highest: int) -> int | None:
    """The fill price on the tick once a print reached ``fill + multiple * R``, else None."""
    if highest < r_threshold(fill, risk, multiple):
        return None
    return round_to_tick(fill)


def trail_proposal(fill: int, risk: int, distance: int, after: Decimal, highest: int
                   ) -> int | None:
    """``highest - distance`` on the tick once a print reached ``fill + after * R``, else None."""
    if highest < r_threshold(fill, risk, after) or highest - distance <= 0:
        return None
    return round_to_tick(highest - distance)


def proposals(params: StrategyParams, state: ManagedStop) -> list[StopProposal]:
    """What the breakeven and trail rules of ``params`` ask for now."""
    out: list[StopProposal] = []
    if params.breakeven is not None:
        price = breakeven_proposal(state.fill, state.risk, params.breakeven, state.highest)
        if price is not None:
            out.append(StopProposal(price, StopRule.BREAKEVEN))
    if params.trail is not None:
        after = params.trail_after if params.trail_after is not None else Decimal(0)
        price = trail_proposal(state.fill, state.risk, params.trail, after, state.highest)
        if price is not None:
            out.append(StopProposal(price, StopRule.TRAIL))
    return out


def raise_stop(state: ManagedStop, asked: list[StopProposal]) -> ManagedStop:
    """The highest of the current stop and the proposals; ties keep the current rule."""
    best = state.stop, state.rule
    for proposal in asked:
        if proposal.price > best[0]:
            best = proposal.price, proposal.rule
    return state if best[0] == state.stop else state._replace(stop=best[0], rule=best[1])


def on_print(params: StrategyParams, state: ManagedStop, price: int) -> ManagedStop:
    """The stop after one print since the fill (a 1-second high in the backtest)."""
    if price > state.highest:
        state = state._replace(highest=price)
    return raise_stop(state, proposals(params, state))


def on_ladder_stop(state: ManagedStop, ladder_stop: int) -> ManagedStop:
    """The ladder's stop after a rung fill joins the proposals: the higher one holds."""
    return raise_stop(state, [StopProposal(ladder_stop, StopRule.LADDER)])


def modify_due(held: int, wanted: int, last_modify_at: int | None, now: int) -> bool:
    """True when the broker's stop at ``held`` should be modified to ``wanted`` now.

    Only upward, by at least one whole tick, and at most once a second per order.
    """
    if wanted < held + tick_size(held):
        return False
    return last_modify_at is None or now - last_modify_at >= MODIFY_INTERVAL_NS
