"""Pure translations for the order router: plans to ib_async orders, order refs,
IB statuses to ours, and the ladder arithmetic of broker-held exits.

Order refs (the idempotency key at the broker): the entry carries the plan's
``order_ref`` (``bo:YYYYMMDD:session:watcher_id``), take-profit rung *n*
(1-based) ``{ref}:tp{n}``, the stop ``{ref}:sl`` and the sale that flattens the
position (the operator's or the kill switch's) ``{ref}:fx``. A sliced entry
(``slices``) has no order with the bare ref: slice *k* is ``{ref}:s{k}``, role
entry, rung *k* (:mod:`breakoutd.ibkr.slicing`). Watcher ids never contain
``:`` (the watchlist schema forbids it) but a scanned watcher's ``scan:SYMBOL``
(breakoutd.core.scan), whose two parts are read as one id, so a ref parses back
unambiguously.

Exit sizes: the exits are children of the entry in one OCA group of type 2
("reduce with block"): every fill of one reduces each sibling by the filled
shares, and IB blocks siblings while one executes (overfill protection).
Rung *n* is sent for the *cumulative* quantity ``C_n = q_1 + ... + q_n`` and
the stop for the whole quantity, so whatever fills in whatever order, each
exit's remaining size is ``C_n - sold`` and never more than the position:
rungs do not cancel each other, the stop shrinks with every fill at the
broker, the last fill cancels what is left, and none of it needs the daemon.
A bracket is the one-rung case of the same rule.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, Final, NamedTuple

from ib_async import Order

from breakoutd.core.events import DONE_STATUSES, OrderRole, OrderSent
from breakoutd.core.ladder import LadderState, StopMove, on_rung_fill
from breakoutd.core.params import EntryKind
from breakoutd.core.plans import OrderPlan
from breakoutd.core.prices import TICK_ABOVE_DOLLAR, to_decimal, to_float
from breakoutd.ibkr.convert import price_to_micros

# The roles of an entry's orders (core.events.OrderRole), named once.
ENTRY: Final = "entry"
TAKE_PROFIT: Final = "take_profit"
STOP: Final = "stop"
FLATTEN: Final = "flatten"
OCA_REDUCE_WITH_BLOCK = 2

# Statuses only the gateway sends; PendingSubmit/PendingCancel/ValidationError are ib_async's own.
# The final ones (DONE_STATUSES) are the catalog's: the status events carry them.
BROKER_STATUSES = frozenset({"ApiPending", "PreSubmitted", "Submitted", "ApiCancelled",
                             "Cancelled", "Filled", "Inactive"})


class RefParts(NamedTuple):
    """An order ref split into the entry's ref, the order's role and rung."""

    base: str
    role: OrderRole
    rung: int  # 1-based take-profit rung or slice; 0 for an unsliced entry and the stop


class PlannedOrder(NamedTuple):
    """One ib_async order of a plan, with its role."""

    role: OrderRole
    rung: int
    order: Order


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


def day_prefix(day: dt.date) -> str:
    """The start of every entry ref of a trading day."""
    return f"bo:{day:%Y%m%d}:"


def watcher_of(ref: str) -> str:
    """The watcher id of an entry ref."""
    return ref.split(":", 3)[3]


def exit_thresholds(plan: OrderPlan) -> tuple[int, ...]:
    """Cumulative rung sizes ``C_n``: what rung n is sent for (see module doc)."""
    total, out = 0, []
    for rung in plan.rungs:
        total += rung.qty
        out.append(total)
    return tuple(out)


def plan_to_orders(plan: OrderPlan, account: str, ids: list[int]) -> list[PlannedOrder]:
    """The entry and its exits as ib_async orders; the last one transmits the group."""
    entry = entry_order(plan, account, ids[0])
    return [entry, *exit_orders(plan, account, ids, entry.order)]


def has_exits(plan: OrderPlan) -> bool:
    """True when the plan sends broker-held exits with its entry."""
    return bool(plan.rungs) or (plan.stop is not None and plan.stop_limit is not None)


def entry_values(plan: OrderPlan, account: str, order_id: int,
                 order_ref: str | None = None) -> dict[str, Any]:
    """The parent BUY's attributes (``order_ref``: a first slice's, else the plan's); it
    transmits only when no exits follow it."""
    values: dict[str, Any] = {
        "orderId": order_id, "action": "BUY", "orderType": "MKT", "totalQuantity": plan.qty,
        "orderRef": order_ref or plan.order_ref, "tif": plan.tif, "outsideRth": plan.outside_rth,
        "account": account, "transmit": not has_exits(plan)}
    if plan.entry is not EntryKind.MARKET and plan.limit is not None:
        values["orderType"], values["lmtPrice"] = "LMT", to_float(plan.limit)
    return values


def exit_values(plan: OrderPlan, account: str, ids: list[int],
                parent_id: int) -> list[tuple[OrderRole, int, dict[str, Any]]]:
    """Role, rung and attributes of each exit (ids after the parent's); the last transmits."""
    out: list[tuple[OrderRole, int, dict[str, Any]]] = []
    for n, (rung, qty) in enumerate(zip(plan.rungs, exit_thresholds(plan), strict=True), 1):
        out.append((TAKE_PROFIT, n, {
            "orderId": ids[n], "action": "SELL", "orderType": "LMT", "totalQuantity": qty,
            "lmtPrice": to_float(rung.price),
            "orderRef": child_ref(plan.order_ref, TAKE_PROFIT, n)}))
    if plan.stop is not None and plan.stop_limit is not None:
        out.append((STOP, 0, {
            "orderId": ids[len(out) + 1], "action": "SELL", "orderType": "STP LMT",
            "totalQuantity": plan.qty, "auxPrice": to_float(plan.stop),
            "lmtPrice": to_float(plan.stop_limit), "orderRef": child_ref(plan.order_ref, STOP)}))
    grouped = len(out) > 1
    for _, _, v in out:
        v.update(tif=plan.tif, outsideRth=plan.outside_rth, account=account, transmit=False,
                 parentId=parent_id)
        if grouped:
            v.update(ocaGroup=plan.oca_group, ocaType=OCA_REDUCE_WITH_BLOCK)
    if out:
        out[-1][2]["transmit"] = True
    return out


def entry_order(plan: OrderPlan, account: str, order_id: int) -> PlannedOrder:
    """The parent BUY as an ib_async order."""
    return PlannedOrder(ENTRY, 0, Order(**entry_values(plan, account, order_id)))


def exit_orders(plan: OrderPlan, account: str, ids: list[int], parent: Order) -> list[PlannedOrder]:
    """The take-profit rungs and the stop as ib_async orders."""
    return [PlannedOrder(role, rung, Order(**values))
            for role, rung, values in exit_values(plan, account, ids, parent.orderId)]


def whole_shares(value: object) -> int:
    """A quantity from ib_async as whole shares; 0 for IB's unset value."""
    number = float(value)  # type: ignore[arg-type]
    return int(number) if 0 <= number < 1e300 else 0


def order_sent_event(at: int, ref: str, symbol: str, planned: PlannedOrder) -> OrderSent:
    """The OrderSent event of one planned order."""
    o = planned.order
    return OrderSent(
        at=at, order_ref=ref, role=planned.role, rung=planned.rung,
        order_id=o.orderId, parent_id=o.parentId, symbol=symbol, action=o.action,
        order_type=o.orderType, qty=int(o.totalQuantity), limit=_dec(o.lmtPrice),
        stop=_dec(o.auxPrice), oca_group=o.ocaGroup, transmit=o.transmit,
    )


def _dec(value: float | Decimal | None) -> Decimal | None:
    micros = price_to_micros(value)
    return None if micros is None else to_decimal(micros)


def entry_status(parent_status: str, bought: int, sold: int) -> str:
    """Our status of an entry: working, partially_filled, filled, cancelled, rejected, closed."""
    done = parent_status in DONE_STATUSES
    if bought > 0 and sold >= bought and done:
        return "closed"
    if parent_status == "Inactive" and bought == 0:
        return "rejected"
    if done:
        return "filled" if bought > 0 else "cancelled"
    return "partially_filled" if bought > 0 else "working"


# --- ladders -------------------------------------------------------------------------


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
