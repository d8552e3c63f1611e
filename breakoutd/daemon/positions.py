"""Market data for what the daemon holds: marks for the ledger, live prices for status.

A symbol keeps its data while it has an open position or a working entry,
whether or not a watcher still listens (the last price, the unrealized P&L
and the kill switch depend on it), and releases it once it is flat. The
close of each 1-second bar is the symbol's mark in the day ledger, the same
mark the backtest uses, and after each mark the kill switch is asked.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from loguru import logger

from breakoutd.core.bars import Bar
from breakoutd.core.ledger import DayLedger
from breakoutd.ibkr.market_data import Instrument, MarketData

_NEVER_URGENT = 2**62  # marks can wait for the end of a read: no level to act at


class _Marks:
    """One symbol's listener: every closed 1-second bar is a mark."""

    def __init__(self, holder: HeldData, symbol: str) -> None:
        self._holder = holder
        self._symbol = symbol

    def on_fast_bar(self, bar: Bar) -> None:
        self._holder.on_mark(self._symbol, bar.close)
        for hook in self._holder.on_bar:  # the position manager's prints (stop rules)
            hook(self._symbol, bar)

    def on_close_bar(self, bar: Bar) -> None:
        return None


class HeldData:
    """Subscribes the symbols the ledger has slots in; feeds their marks back to it."""

    def __init__(self, market: MarketData, ledger: Callable[[], DayLedger],
                 instrument: Callable[[str], Awaitable[Instrument]],
                 on_marked: Callable[[], None]) -> None:
        self._market = market
        self._ledger = ledger
        self._instrument = instrument
        self._on_marked = on_marked
        self._held: dict[str, _Marks] = {}
        self._pending: set[str] = set()
        self.on_bar: list[Callable[[str, Bar], None]] = []  # every 1-second bar of a held symbol

    @property
    def symbols(self) -> list[str]:
        """Symbols whose data is held for a position or a working entry."""
        return sorted(self._held)

    def on_mark(self, symbol: str, price: int) -> None:
        """A closed 1-second bar of a held symbol."""
        self._ledger().mark(symbol, price)
        self._on_marked()

    async def update(self) -> None:
        """Hold the data of every symbol with a slot in the ledger; release the rest."""
        wanted = {b.symbol for b in self._ledger().books.values() if b.takes_slot}
        for symbol in sorted(wanted - set(self._held) - self._pending):
            self._pending.add(symbol)
            try:
                inst = await self._instrument(symbol)
            except Exception as exc:  # noqa: BLE001  # no data: status says so, trading goes on
                logger.error("{}: no market data for the position ({}); its P&L is not "
                             "marked", symbol, exc)
                continue
            finally:
                self._pending.discard(symbol)
            self.hold(symbol, inst)
        for symbol in sorted(set(self._held) - wanted):
            self._market.unsubscribe(symbol, self._held.pop(symbol))

    def hold(self, symbol: str, inst: Instrument) -> None:
        """Hold the symbol's data now (before its last watcher lets it go)."""
        if symbol not in self._held:
            listener = self._held[symbol] = _Marks(self, symbol)
            self._market.subscribe(inst, listener, 60 * 10**9, _NEVER_URGENT)

    def release_all(self) -> None:
        """Stop every held subscription (shutdown, a new day)."""
        for symbol, listener in list(self._held.items()):
            self._market.unsubscribe(symbol, listener)
        self._held.clear()
