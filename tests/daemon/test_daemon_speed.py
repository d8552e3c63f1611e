"""A simulated clock ten times faster: the daemon decides as at 1x, in virtual seconds.

The reference is the manual clock (the test steps virtual time, as a 1x run
would see it); then the gateway's clock runs at 10x, read by the daemon as
``breakoutd run --sim --sim-speed 10`` does (the gateway's clock and rate) and
as beside ``breakoutd sim --speed 10`` (its own clock, told by the gateway's
clock notice). Bars must close at the same virtual instants, give the same
decisions, and a quote's age must be counted in virtual seconds.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from breakoutd.core import events as ev
from breakoutd.core.bars import NS
from breakoutd.sim import Row
from tests.daemon.daemonkit import Events, at, running_daemon, trade_row
from tests.daemon.test_daemon_sim import ramp

WATCHLIST = """\
breakouts:
  - {symbol: FAST, level: 10.00, qty: 100, tp: 10.50, sl: 9.80}
  - {symbol: CONF, level: 10.00, qty: 100, tp: 10.50, sl: 9.80}
  - {symbol: STALE, level: 10.00, qty: 100, tp: 10.50, sl: 9.80}
"""


def _rows() -> list[Row]:
    # FAST: a 1-second spike at 09:30:23 fires the fast rule when 09:30:24 prints.
    spike = trade_row("09:30:23", "FAST", "10.12", "10.14", "10.11", "10.13", "10.12", "10.14")
    fast = ramp("09:29:50", 33, "9.95", "FAST") + [spike] + ramp("09:30:24", 50, "10.13", "FAST")
    # CONF: the 09:30 minute closes at 10.02: confirmed at 09:31:00.
    conf = ramp("09:29:50", 40, "9.95", "CONF") + ramp("09:30:30", 45, "10.02", "CONF")
    # STALE: the offer goes away at 09:30:30; at 09:31:00 the quote is 29-30 s old.
    stale = ramp("09:29:50", 40, "9.95", "STALE") + [
        r._replace(ask=0, ask_size=0, bid_size=100) for r in ramp("09:30:30", 45, "10.02", "STALE")]
    return sorted(fast + conf + stale, key=lambda r: r.time)


def _done(e: Events) -> bool:
    return bool(e.of(ev.FastTriggered) and e.of(ev.Confirmed) and e.of(ev.Rejected))


def _decisions(e: Events) -> list[tuple[Any, ...]]:
    """What was decided, without when: the same at any speed."""
    out: list[tuple[Any, ...]] = [("fast", f.watcher_id, f.bar_start, f.high, f.low, f.close)
                                  for f in e.of(ev.FastTriggered)]
    out += [("confirmed", c.watcher_id, c.bar_start, c.close) for c in e.of(ev.Confirmed)]
    out += [("rejected", r.watcher_id, r.reason, r.kind, r.trigger_at) for r in e.of(ev.Rejected)]
    out += [("intent", i.watcher_id, i.kind, i.trigger_at, i.limit) for i in e.of(ev.OrderIntent)]
    return sorted(out, key=repr)


def _instants(e: Events) -> dict[str, int]:
    """The virtual instant each decision was taken at (the bar's close, seen by the daemon)."""
    found = [*e.of(ev.FastTriggered), *e.of(ev.Confirmed)]
    return {type(x).__name__: x.at for x in found}


def _quote_age(e: Events) -> float:
    (rejected,) = e.of(ev.Rejected)
    assert rejected.quote_age is not None
    return rejected.quote_age


async def _reference(var: Path) -> Events:
    async with running_daemon(_rows(), WATCHLIST, var) as r:
        await r.step(80, until=lambda: _done(r.events))
        assert await r.finish() == 0
        return r.events


async def _at_speed_10(var: Path, clock: str) -> Events:
    async with running_daemon(_rows(), WATCHLIST, var, manual_clock=False, speed=10,
                              clock=clock) as r:
        await r.events.wait(lambda: _done(r.events), timeout=30)
        assert await r.finish() == 0
        return r.events


@pytest.mark.parametrize("clock", ["view", "broker"])
def test_at_speed_10_bars_close_and_quotes_age_as_at_speed_1(tmp_path: Path, clock: str) -> None:
    async def body() -> None:
        slow = await _reference(tmp_path / "x1")
        fast = await _at_speed_10(tmp_path / "x10", clock)
        assert _decisions(slow), "the scenario decides nothing"
        assert _decisions(fast) == _decisions(slow)
        reference = _instants(slow)
        assert reference == {"FastTriggered": at("09:30:24"), "Confirmed": at("09:31:00")}
        for name, instant in _instants(fast).items():
            # The same virtual instant, within the loopback's latency at 10x (and a
            # loaded host's): a clock at the host's rate would be tens of seconds behind.
            assert -NS // 4 <= instant - reference[name] < NS, (name, instant - reference[name])
        # The ask-less quote of 09:30:30 arrived at 09:30:31: 29-30 virtual seconds old,
        # not the 3 real seconds that passed.
        assert 29 <= _quote_age(slow) < 30
        assert 29 <= _quote_age(fast) < 30.5
        if clock == "broker":
            notices = [m for m in fast.of(ev.GatewayMessage) if m.code == 2199]
            assert notices and "running at 10x" in notices[0].message

    asyncio.run(asyncio.wait_for(body(), 90))
