"""Plans to ib_async orders, and IB's order statuses to ours.

The refs the orders carry are :mod:`breakoutd.core.refs`; their sizes follow
the cumulative reduce-OCA rule of :mod:`breakoutd.core.ladder`, whose
:func:`~breakoutd.core.ladder.exit_thresholds` each rung is sent for.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ib_async import Order

from breakoutd.core.events import OrderRole, OrderSent
from breakoutd.core.ladder import exit_thresholds
from breakoutd.core.params import EntryKind
from breakoutd.core.plans import OrderPlan
from breakoutd.core.prices import to_float
from breakoutd.core.refs import STOP, TAKE_PROFIT, child_ref
from breakoutd.ibkr.convert import price_to_decimal

OCA_REDUCE_WITH_BLOCK = 2

# Statuses only the gateway sends; PendingSubmit/PendingCancel/ValidationError are ib_async's own.
# The final ones (DONE_STATUSES) are the catalog's: the status events carry them.
BROKER_STATUSES = frozenset({"ApiPending", "PreSubmitted", "Submitted", "ApiCancelled",
                             "Cancelled", "Filled", "Inactive"})


class PlannedOrder(NamedTuple):
    """One ib_async order of a plan, with its role."""

    role: OrderRole
    rung: int
    order: Order


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
        order_type=o.orderType, qty=int(o.totalQuantity), limit=price_to_decimal(o.lmtPrice),
        stop=price_to_decimal(o.auxPrice), oca_group=o.ocaGroup, transmit=o.transmit,
    )
