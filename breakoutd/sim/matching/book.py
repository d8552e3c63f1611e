"""Order records, quotes and the pricing rules of the simulated matching engine.

The rules, all conservative where the tape cannot say what happened:

- Marketable at the quote: a BUY MKT, or a BUY LMT at or above the ask, fills
  at the ask for at most the displayed ask size (SELL: at the bid). The size a
  quote displays is used up by fills until the next quote replaces it, so two
  orders never both take the same displayed shares.
- Trade-through: a working BUY LMT at P fills at P when a trade prints strictly
  below P (SELL: strictly above), for at most the printed size. A print at P
  fills nothing: the queue ahead of the order is unknown.
- Stops trigger on trades only: BUY when a print is >= the stop price, SELL
  when <= it. A triggered STP is a market order, a triggered STP LMT a limit
  order. On the trigger itself the order fills no better than the print that
  triggered it (the quote may be a second old): a BUY at max(ask, print), a
  SELL at min(bid, print). After that it fills at a quote only once a newer
  quote arrives (or on a later print through its limit).
- A one-second tape row becomes prints at open, low, high, close in that order
  (repeats dropped), its volume split evenly among them: the low before the
  high, so a long position's stop below fires before its target above in the
  same second. Then the row's quote, in force from ``time + 1s``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from breakoutd.sim.matching.values import DONE_STATES, SimOrder


@dataclass
class Quote:
    """The best bid and ask of a symbol and the displayed size not yet taken."""

    bid: int | None = None
    bid_left: int = 0
    ask: int | None = None
    ask_left: int = 0
    version: int = 0  # counts quotes, so an order can tell a quote newer than an event


@dataclass(eq=False)  # identity: records are found in lists by ``is``
class OrderRecord:
    """The engine's state of one order."""

    order: SimOrder
    seq: int  # arrival order: time priority among orders of a symbol
    held: bool  # transmit=False and not yet released with its group
    waiting_parent: bool = False
    status: str = ""  # the last status reported; "" before the first
    filled: int = 0
    value: int = 0  # sum of price * shares of the fills
    commission: int = 0
    last_fill_price: int = 0
    triggered: bool = False
    trigger_version: int = -1  # the quote version when the stop triggered
    rth_closes: int = 0  # the engine's session counters when the order arrived
    day_ends: int = 0
    children: list[int] = field(default_factory=list)  # order ids, same client

    @property
    def key(self) -> tuple[int, int]:
        """``(client_id, order_id)``."""
        return self.order.client_id, self.order.order_id

    @property
    def remaining(self) -> int:
        """Shares not yet filled."""
        return self.order.total_qty - self.filled

    @property
    def done(self) -> bool:
        """True once Filled, Cancelled or Inactive."""
        return self.status in DONE_STATES

    @property
    def is_stop(self) -> bool:
        """True for STP and STP LMT."""
        return self.order.order_type in ("STP", "STP LMT")

    def limit(self) -> int | None:
        """The limit the order matches with now; None when it trades at market."""
        kind = self.order.order_type
        if kind == "LMT" or kind == "STP LMT":
            return self.order.lmt_price
        return None

    def avg_price(self) -> int:
        """Average fill price in micro-dollars, rounded half up; 0 before a fill."""
        if not self.filled:
            return 0
        return (2 * self.value + self.filled) // (2 * self.filled)


def quote_fill(
    is_buy: bool, limit: int | None, quote: Quote, worst: int | None = None
) -> tuple[int, int] | None:
    """``(price, shares available)`` at which an order is marketable, or None."""
    price, left = (quote.ask, quote.ask_left) if is_buy else (quote.bid, quote.bid_left)
    if price is None or left <= 0:
        return None
    if worst is not None:
        price = max(price, worst) if is_buy else min(price, worst)
    if limit is not None and (price > limit if is_buy else price < limit):
        return None
    return price, left


def take_from_quote(is_buy: bool, quote: Quote, shares: int) -> None:
    """Use up displayed size taken by a fill."""
    if is_buy:
        quote.ask_left -= shares
    else:
        quote.bid_left -= shares


def trades_through(is_buy: bool, limit: int, price: int) -> bool:
    """True when a print is strictly through a resting limit."""
    return price < limit if is_buy else price > limit


def stop_triggered(is_buy: bool, stop: int, price: int) -> bool:
    """True when a print triggers a stop: BUY at or above it, SELL at or below."""
    return price >= stop if is_buy else price <= stop


def row_prints(
    open_: int, high: int, low: int, close: int, volume: int | None
) -> list[tuple[int, int]]:
    """The ``(price, size)`` prints a one-second OHLC row stands for (see module doc)."""
    prices: list[int] = []
    for price in (open_, low, high, close):
        if not prices or prices[-1] != price:
            prices.append(price)
    total = max(volume or 0, len(prices))
    size, extra = divmod(total, len(prices))
    return [(price, size + (1 if i < extra else 0)) for i, price in enumerate(prices)]
