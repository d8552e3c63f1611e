"""A market's seconds arrive spread over the second after them, symbol by symbol.

With ``spread_ns`` the sim stops delivering every symbol's second at the same
instant: symbol *i* of *n* (sorted) learns its row of second *t* at
``t + 1s + i * spread_ns / n``. The replay, the history it serves and the
realtime bars it sends all wait for that instant, never sending a symbol's
5-second bar before the bar's last row is known.
"""

from __future__ import annotations

import pytest

from breakoutd.core.bars import NS
from breakoutd.sim import Market, Row
from breakoutd.sim.feeds import FeedHub, Sub
from breakoutd.sim.market import arrival_offsets
from tests.sim.simkit import at, connect, row, run, sim, stock, sync, walk

MS = NS // 1000
T = at("09:30:00")


def two_symbols() -> list[Row]:
    """One row each for A and B in the seconds 09:30:00 and 09:30:01 (B listed first)."""
    return [
        row(T, "B", ("8.00", "8.00", "8.00", "8.00", 100), "7.99", "8.01"),
        row(T, "A", ("5.00", "5.00", "5.00", "5.00", 100), "4.99", "5.01"),
        row(T + NS, "B", ("8.01", "8.01", "8.01", "8.01", 100), "8.00", "8.02"),
        row(T + NS, "A", ("5.01", "5.01", "5.01", "5.01", 100), "5.00", "5.02"),
    ]


def symbols_of(rows: list[Row]) -> list[tuple[int, str]]:
    return [(r.time, r.symbol) for r in rows]


def test_without_spread_every_symbols_second_is_known_together_one_second_later() -> None:
    market = Market(two_symbols())
    assert market.offsets == {"A": 0, "B": 0}
    assert market.next_due() == T + NS
    assert market.take_due(T + NS - 1) == []
    assert sorted(symbols_of(market.take_due(T + NS))) == [(T, "A"), (T, "B")]
    assert market.next_due() == T + 2 * NS


def test_with_spread_the_later_symbol_learns_its_second_later() -> None:
    market = Market(two_symbols(), spread_ns=500 * MS)
    assert market.offsets == {"A": 0, "B": 250 * MS}
    assert market.next_due() == T + NS
    assert symbols_of(market.take_due(T + NS)) == [(T, "A")]
    assert market.next_due() == T + NS + 250 * MS
    assert market.take_due(T + NS + 250 * MS - 1) == []
    assert symbols_of(market.take_due(T + NS + 250 * MS)) == [(T, "B")]
    assert market.next_due() == T + 2 * NS
    assert symbols_of(market.take_due(T + 3 * NS)) == [(T + NS, "A"), (T + NS, "B")]
    assert market.next_due() is None and market.exhausted


def test_history_of_the_later_symbol_stops_at_what_it_has_learnt() -> None:
    market = Market(two_symbols(), spread_ns=500 * MS)
    market.preroll(T + NS)
    assert [b.start for b in market.bars_between("A", T, T + 2 * NS)] == [T]
    assert market.bars_between("B", T, T + 2 * NS) == []
    market.preroll(T + NS + 250 * MS)
    assert [b.start for b in market.bars_between("B", T, T + 2 * NS)] == [T]


def test_offsets_are_spread_evenly_over_the_sorted_symbols() -> None:
    assert arrival_offsets(["C", "A", "B"], 600 * MS) == {"A": 0, "B": 200 * MS, "C": 400 * MS}
    assert arrival_offsets(["ONLY"], NS) == {"ONLY": 0}
    assert arrival_offsets([], NS) == {}


@pytest.mark.parametrize("spread", [-1, NS + 1, 5 * NS])
def test_a_spread_outside_one_second_is_refused(spread: int) -> None:
    with pytest.raises(ValueError, match="spread_ns"):
        Market(two_symbols(), spread_ns=spread)


@pytest.mark.parametrize("spread", [0, NS])
def test_a_spread_of_zero_to_one_second_is_accepted(spread: int) -> None:
    assert Market(two_symbols(), spread_ns=spread).offsets["A"] == 0


def test_realtime_bars_of_the_later_symbol_wait_for_its_last_row_of_the_bucket() -> None:
    """AAA's 5-second bar goes out at the bucket end (its row of 09:30:04 is known at
    09:30:05); BBB's only when its own row of 09:30:04 is, 250 ms later."""
    tape = walk(1, "AAA") + walk(2, "BBB", price="8.00")

    async def body() -> None:
        async with sim(Market(tape, spread_ns=500 * MS), start="09:30:00") as gw:
            ib = await connect(gw)
            early = ib.reqRealTimeBars(await stock(ib, "AAA"), 5, "TRADES", False)
            late = ib.reqRealTimeBars(await stock(ib, "BBB"), 5, "TRADES", False)
            await sync(ib)
            seen: list[tuple[str, int, int]] = []
            for instant in ("09:30:04.999", "09:30:05", "09:30:05.249", "09:30:05.250",
                            "09:30:10", "09:30:10.250"):
                await gw.advance_to(at(instant))
                await sync(ib)
                seen.append((instant, len(early), len(late)))
            assert seen == [
                ("09:30:04.999", 0, 0),
                ("09:30:05", 1, 0),
                ("09:30:05.249", 1, 0),
                ("09:30:05.250", 1, 1),
                ("09:30:10", 2, 1),
                ("09:30:10.250", 2, 2),
            ]
            first = [r for r in tape if r.symbol == "BBB" and T <= r.time < T + 5 * NS
                     and r.volume]
            assert int(late[0].time.timestamp()) * NS == T
            assert late[0].volume == sum(r.volume or 0 for r in first)
            ib.disconnect()

    run(body())


def test_without_spread_both_symbols_bars_go_out_at_the_bucket_end() -> None:
    tape = walk(1, "AAA") + walk(2, "BBB", price="8.00")

    async def body() -> None:
        async with sim(Market(tape), start="09:30:00") as gw:
            ib = await connect(gw)
            early = ib.reqRealTimeBars(await stock(ib, "AAA"), 5, "TRADES", False)
            late = ib.reqRealTimeBars(await stock(ib, "BBB"), 5, "TRADES", False)
            await sync(ib)
            await gw.advance_to(at("09:30:04.999"))
            await sync(ib)
            assert (len(early), len(late)) == (0, 0)
            await gw.advance_to(at("09:30:05"))
            await sync(ib)
            assert (len(early), len(late)) == (1, 1)
            ib.disconnect()

    run(body())


def test_the_replay_wakes_for_the_later_symbols_bar_even_without_a_row_then() -> None:
    """B has no row in the bucket's last second: its bar still closes at its own offset."""

    class Quiet:
        def send_md(self, symbol: str, fields: list[object], bar: bool = False) -> None:
            pass

    market = Market(two_symbols(), spread_ns=500 * MS)
    hub = FeedHub(market)
    client = Quiet()
    for req, symbol in ((1, "A"), (2, "B")):
        hub.add(Sub(client, req, symbol, "rtbars", next_bucket=T))  # subscribed at T
    assert hub.next_wake(T) == T + 5 * NS  # A's bucket end
    hub.flush(T + 5 * NS)  # as the replay does at each wake
    assert hub.next_wake(T + 5 * NS) == T + 5 * NS + 250 * MS  # B's bucket end
    hub.flush(T + 5 * NS + 250 * MS)
    assert hub.next_wake(T + 5 * NS + 250 * MS) == T + 10 * NS  # then A's next one
    assert hub.cancel(client, 1, "rtbars") and hub.cancel(client, 2, "rtbars")
    assert hub.next_wake(T + 10 * NS) is None  # nobody wants bars any more
    assert FeedHub(Market(two_symbols())).next_wake(T) is None  # nobody wants bars
