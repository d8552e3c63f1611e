"""The daemon over the simulated gateway: the quote must confirm the break before any order."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import pytest

from breakoutd.core import events as ev
from breakoutd.daemon.journal import read_journal
from breakoutd.sim import Row
from tests.daemon.daemonkit import DAY, at, running_daemon, trade_row
from tests.daemon.test_daemon_sim import BRACKET, ramp


def run(coro: object) -> None:
    asyncio.run(asyncio.wait_for(coro, 60))  # type: ignore[arg-type]


async def _rejected(rows: list[Row], watchlist: str, var: Path) -> tuple[ev.Rejected, list[str]]:
    """Run until the watcher is done; its one Rejected and the names of every event."""
    async with running_daemon(rows, watchlist, var) as r:
        e = r.events
        await r.step(60, until=lambda: bool(e.of(ev.Rejected) or e.of(ev.OrderSent)))
        await r.step(2)  # time for an order that should not exist to show up
        names = e.names()
        rejected = e.of(ev.Rejected)
        assert await r.finish() == 0
    assert len(rejected) == 1, names
    return rejected[0], names


def test_a_print_far_above_a_quote_below_the_level_is_a_bad_print(tmp_path: Path) -> None:
    # 09:30:23 prints 10.51 once (k = 2, m = 1.25: D 14c, S 4c; a one-price second
    # fires the fast rule) while the market's own quote stays 9.95/9.96.
    spike = trade_row("09:30:23", "DEMO", "10.51", "10.51", "10.51", "10.51", "9.95", "9.96")
    rows = ramp("09:29:50", 33, "9.95") + [spike] + ramp("09:30:24", 60, "9.95")

    async def body() -> None:
        rej, names = await _rejected(rows, BRACKET, tmp_path)
        assert (rej.reason, rej.kind, rej.trigger_at, rej.limit) == (
            "quote_below_level", "fast", at("09:30:24"), Decimal("9.96"))
        assert "ask 9.96 is below level 10.00" in rej.detail
        assert "FastTriggered" in names
        assert "OrderIntent" not in names and "OrderSent" not in names
        journal = read_journal(tmp_path / "journal" / DAY.isoformat() / "events.jsonl")
        assert [(j["reason"], j["limit"]) for j in journal if j["event"] == "Rejected"] == [
            ("quote_below_level", 9.96)]

    run(body())


@pytest.mark.parametrize(("max_chase", "entered"), [("0.13", False), ("0.14", True)])
def test_max_chase_rejects_an_ask_already_past_level_plus_max_chase(
        tmp_path: Path, max_chase: str, entered: bool) -> None:
    # 09:30:23 (k = 2: D 14c, S 4c): high 10.14, low 10.11, close 10.13, ask 10.14.
    spike = trade_row("09:30:23", "DEMO", "10.12", "10.14", "10.11", "10.13", "10.12", "10.14")
    rows = ramp("09:29:50", 33, "9.95") + [spike] + ramp("09:30:24", 60, "10.13")
    watchlist = BRACKET + f"    max_chase: {max_chase}\n"

    async def body() -> None:
        async with running_daemon(rows, watchlist, tmp_path) as r:
            e = r.events
            await r.step(60, until=lambda: bool(e.of(ev.Rejected) or e.of(ev.OrderSent)))
            await r.step(2)
            rejected, sent = e.of(ev.Rejected), e.of(ev.OrderSent)
            intents = e.of(ev.OrderIntent)
            assert await r.finish() == 0
        if entered:  # the ask exactly at level + max_chase confirms
            assert not rejected and [i.limit for i in intents] == [Decimal("10.14")]
            assert [s.role for s in sent] == ["entry", "take_profit", "stop"]
            return
        assert not sent and not intents
        assert [(x.reason, x.kind, x.trigger_at, x.limit) for x in rejected] == [
            ("chased", "fast", at("09:30:24"), Decimal("10.14"))]
        assert rejected[0].detail == "ask 10.14 is above level 10.00 + max_chase 0.13"

    run(body())
