"""The embedded default: a simulated gateway on a virtual trading day, in-process.

``breakoutd run --sim`` starts :class:`~breakoutd.sim.SimGateway` on a free
loopback port with a market for the watchlists' symbols, whose prices break
through the watchlists' own levels shortly after the regular open: the
scripted demo of :mod:`breakoutd.daemon.demo_market`, or a seeded synthetic
day. A symbol a reload adds gets a demo market of its own. The virtual day is the next trading day whose open is still ahead (in
exchange time) and starts a little before 09:30, so a newcomer sees watchers
arm, trigger and trade within two minutes at any hour of any day.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from pathlib import Path

from breakoutd.calendar import EXCHANGE_TZ, day_sessions, exchange_date, next_trading_day
from breakoutd.config import Watchlist, load_watchlists
from breakoutd.daemon.demo_market import added_symbol_rows, demo_rows, gapper_rows
from breakoutd.daemon.sim_var import PREVIOUS, prepare_sim_var
from breakoutd.sim import Market, SimGateway
from breakoutd.tape import synthetic_tape

VIRTUAL_START = dt.time(9, 29, 50)
BREAKOUTS_BETWEEN = (dt.time(9, 30, 5), dt.time(9, 31, 0))


def virtual_day(now: dt.datetime | None = None) -> dt.date:
    """Today if its regular open is still ahead, else the next trading day."""
    local = (now or dt.datetime.now(EXCHANGE_TZ)).astimezone(EXCHANGE_TZ)
    if day_sessions(local.date()) is not None and local.time() < VIRTUAL_START:
        return local.date()
    return next_trading_day(local.date())


class GatewayClock:
    """The embedded gateway's virtual clock as the daemon's: its instant and its rate."""

    def __init__(self, gateway: SimGateway) -> None:
        self._gateway = gateway

    def __call__(self) -> int:
        return self._gateway.now_ns()

    @property
    def rate(self) -> float:
        """Virtual seconds per real second (0 while paused)."""
        return self._gateway.clock.rate


async def start_embedded_sim(watchlists: Sequence[Path], seed: int | None = None,
                             day: dt.date | None = None, *, speed: float = 1.0,
                             manual_clock: bool = False) -> SimGateway:
    """Start a simulated gateway whose market breaks the watchlists' levels.

    Without ``seed`` the market is the scripted demo (:mod:`breakoutd.daemon.demo_market`);
    with one, a seeded synthetic day whose breakouts are left to chance."""
    config = load_watchlists(watchlists)
    the_day = day or virtual_day()
    if seed is None:
        rows = demo_rows(config.watchers, the_day)
        if config.scan is not None:  # something for the scanner to find
            rows += gapper_rows(config.scan.template, the_day)
        market = Market(rows)
    else:
        levels: dict[str, list[int]] = {}
        for w in config.watchers:
            levels.setdefault(w.symbol, []).append(w.level)
        market = Market.from_tape(synthetic_tape(seed, sorted(levels), the_day, levels=levels,
                                                 breakouts_between=BREAKOUTS_BETWEEN))
    gateway = SimGateway(market, port=0, start=VIRTUAL_START, day=the_day, speed=speed,
                         manual_clock=manual_clock)
    await gateway.start()
    return gateway


async def start_sim_run(watchlists: Sequence[Path], var: Path, env: Mapping[str, str],
                        seed: int | None = None, day: dt.date | None = None,
                        manual_clock: bool = False, speed: float = 1.0
                        ) -> tuple[SimGateway, str]:
    """A ``--sim`` run: ``var`` cleared of the previous run, the gateway started; the
    gateway and a line saying where this run's files are are returned."""
    the_day = day or virtual_day()
    moved = prepare_sim_var(var, the_day.isoformat(), env)
    sim = await start_embedded_sim(watchlists, seed=seed, day=the_day, speed=speed,
                                   manual_clock=manual_clock)
    market = "a seeded random market" if seed is not None else "the demo market"
    where = (f"simulated day {the_day} from {VIRTUAL_START} ET on {market}: journals, state "
             f"and status in {var}")
    if moved:
        where += f" (the previous run's in {var / PREVIOUS})"
    return sim, where


def cover_new_symbols(gateway: SimGateway, config: Watchlist) -> list[str]:
    """Give the symbols a reload added a demo market of their own; the symbols are returned."""
    added = []
    day = exchange_date(gateway.now_ns())
    for symbol in dict.fromkeys(w.symbol for w in config.watchers):
        if symbol not in gateway.market.states:
            gateway.add_symbol(added_symbol_rows(config.watchers, symbol, gateway.now_ns(), day))
            added.append(symbol)
    return added
