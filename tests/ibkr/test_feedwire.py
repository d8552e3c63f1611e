"""The daemon's market data read off ib_async's socket by FeedWire.

Over the simulated gateway and the real ib_async client, what MarketData
hands the strategy (quotes, 1-second bars, close-rule bars) is the tape, and
ib_async's own requests keep working on the same connection. On raw bytes
built with the sim's encoder, what reaches the symbols and what is passed on
to ib_async does not depend on where the socket reads split the stream. And
the per-symbol tick rules (SymbolBatch) follow ib_async's semantics.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import random
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ib_async import IB, Stock
from loguru import logger

from breakoutd.core.bars import MINUTE, NS, Bar, BarAggregator
from breakoutd.ibkr.feedwire import FeedWire, SymbolBatch, wire_to_micros, wire_to_size
from breakoutd.ibkr.market_data import MarketData
from breakoutd.ibkr.streams import SymbolStream
from breakoutd.sim import Market, Row, SimGateway
from breakoutd.sim import outgoing as out
from breakoutd.sim.market import AggBar, row_bar
from breakoutd.sim.wire import encode
from tests.factories import ManualClock
from tests.sim.ibbars import send_quiet_bars
from tests.sim.simkit import at, connect, px, run, sim, sync, walk

Quote4 = tuple[int | None, int | None, int | None, int | None]
Prints = list[tuple[int, int]]


# --- helpers ---------------------------------------------------------------------------


class Listener:
    """A watcher's view of its symbol: bars in the order they were delivered."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, Bar]] = []

    def on_fast_bar(self, bar: Bar) -> None:
        self.seen.append(("fast", bar))

    def on_close_bar(self, bar: Bar) -> None:
        self.seen.append(("close", bar))

    def fast(self) -> list[Bar]:
        return [b for kind, b in self.seen if kind == "fast"]

    def close(self) -> list[Bar]:
        return [b for kind, b in self.seen if kind == "close"]


@pytest.fixture
def logged_errors() -> Iterator[list[str]]:
    """Messages the daemon logged at ERROR (loguru) while the test ran."""
    errors: list[str] = []
    sink = logger.add(lambda m: errors.append(str(m)), level="ERROR", format="{message}")
    yield errors
    logger.remove(sink)


def two_symbols() -> list[Row]:
    return walk(21, "ABC", start="09:00:00", seconds=3600) + walk(22, "XYZ", price="8.00")


def known(rows: list[Row], symbol: str, now: int) -> list[Row]:
    """The symbol's rows the sim has replayed by ``now``."""
    return [r for r in rows if r.symbol == symbol and r.time + NS <= now]


def tape_bars(rows: list[Row], symbol: str, size: int, start: int, end: int) -> list[Bar]:
    """The symbol's traded rows in ``[start, end)`` aggregated to ``size`` (closed bars)."""
    agg = BarAggregator(size)
    bars = [agg.add(row_bar(r)) for r in rows
            if r.symbol == symbol and r.close is not None and start <= r.time < end]
    tail = agg.close_until(end)
    return [b for b in bars if b] + ([tail] if tail else [])


@contextlib.asynccontextmanager
async def daemon_data(market: Market,
                      start: str = "09:30:00") -> AsyncIterator[tuple[SimGateway, IB, MarketData]]:
    """The sim, an ib_async client connected to it, and the daemon's MarketData on it."""
    async with sim(market, start=start) as gw:
        ib = await connect(gw)
        md = MarketData(ib, clock=gw.now_ns, emit=lambda _event: None)
        try:
            yield gw, ib, md
        finally:
            ib.disconnect()


def message_ids_by_read(reads: list[bytes]) -> list[set[bytes]]:
    """For each socket read, the ids of the messages that were completed in it."""
    data = b"".join(reads)
    ends, total = [], 0
    for r in reads:
        total += len(r)
        ends.append(total)
    ids: list[set[bytes]] = [set() for _ in reads]
    pos = 0
    while len(data) - pos >= 4:
        end = pos + 4 + int.from_bytes(data[pos:pos + 4], "big")
        if end > len(data):
            break
        ids[bisect.bisect_left(ends, end)].add(data[pos + 4:end].split(b"\0", 1)[0])
        pos = end
    return ids


# --- over the sim and the real ib_async client -------------------------------------------


def test_quotes_reach_the_stream_in_micro_dollars_as_on_the_tape(
        logged_errors: list[str]) -> None:
    tape = two_symbols()

    async def body() -> None:
        async with daemon_data(Market(tape)) as (gw, ib, md):
            md.subscribe(await md.instrument("ABC"), Listener(), MINUTE)
            await sync(ib)
            stream = md.stream("ABC")
            assert stream is not None
            for step in (0, 1, 37, 100):
                await gw.advance(step)
                await sync(ib)
                last = known(tape, "ABC", gw.now_ns())[-1]
                assert stream.quote is not None
                assert stream.quote[1:] == (last.bid, last.bid_size, last.ask, last.ask_size)
            assert stream.last_price == [r for r in known(tape, "ABC", gw.now_ns())
                                         if r.close is not None][-1].close

    run(body())
    assert logged_errors == []


def test_one_second_bars_are_the_tapes_trades_of_each_second(logged_errors: list[str]) -> None:
    tape = two_symbols()

    async def body() -> None:
        async with daemon_data(Market(tape)) as (gw, ib, md):
            abc, xyz = Listener(), Listener()
            md.subscribe(await md.instrument("ABC"), abc, MINUTE)
            md.subscribe(await md.instrument("XYZ"), xyz, MINUTE)
            await sync(ib)
            for _ in range(4):
                await gw.advance(30)
                await sync(ib)
            now = gw.now_ns()
            assert abc.fast() == tape_bars(tape, "ABC", NS, at("09:30:00"), now)
            assert xyz.fast() == tape_bars(tape, "XYZ", NS, at("09:30:00"), now)
            assert len(abc.fast()) > 60

    run(body())
    assert logged_errors == []


def test_big_reads_of_many_symbols_give_every_symbol_the_tapes_seconds(
        logged_errors: list[str]) -> None:
    """Two minutes of 40 symbols at once: reads of hundreds of KiB, cut anywhere by TCP."""
    symbols = [f"S{i:02d}" for i in range(40)]
    tape = [r for i, s in enumerate(symbols) for r in walk(100 + i, s, seconds=3600)]

    async def body() -> None:
        async with daemon_data(Market(tape)) as (gw, ib, md):
            listeners = {s: Listener() for s in symbols}
            for s in symbols:
                md.subscribe(await md.instrument(s), listeners[s], MINUTE)
            await sync(ib)
            await gw.advance(120)
            await sync(ib)
            md.on_clock()  # the daemon's tick: prints kept for a tick 45 are released
            now = gw.now_ns()
            for s in symbols:
                # the last second may still be open (no later print has closed it)
                assert listeners[s].fast() == tape_bars(tape, s, NS, at("09:30:00"), now)[
                    :len(listeners[s].fast())], s
                assert len(listeners[s].fast()) >= len(tape_bars(tape, s, NS, at("09:30:00"),
                                                                 now)) - 1, s

    run(body(), timeout=120)
    assert logged_errors == []


def test_the_last_watcher_of_a_symbol_may_leave_on_a_bar_the_tick_closed(
        logged_errors: list[str]) -> None:
    """The market goes quiet before the minute ends: the daemon's tick closes the bar,
    its watcher enters and leaves, the feed goes; the tick goes on for the others."""
    rows = [r for r in walk(31, "ABC", seconds=3600) if r.time < at("09:30:40")]
    rows += walk(32, "XYZ", price="8.00")

    async def body() -> None:
        async with daemon_data(Market(rows)) as (gw, ib, md):
            class Enters(Listener):
                def on_close_bar(self, bar: Bar) -> None:
                    super().on_close_bar(bar)
                    md.unsubscribe("ABC", self)

            abc, xyz = Enters(), Listener()
            md.subscribe(await md.instrument("ABC"), abc, MINUTE)
            md.subscribe(await md.instrument("XYZ"), xyz, MINUTE)
            await sync(ib)
            for _ in range(70 * 20):  # 70 s of the daemon's 50 ms ticks
                await gw.advance(0.05)
                md.on_clock()
            await sync(ib)
            md.on_clock()
            assert [b.start for b in abc.close()] == [at("09:30:00")]
            assert md.symbols == ["XYZ"]
            assert [b.start for b in xyz.close()] == [at("09:30:00")]

    run(body(), timeout=120)
    assert logged_errors == []


def test_five_second_bars_make_the_close_rule_bars_after_their_seconds(
        logged_errors: list[str]) -> None:
    """Minute bars equal the tape's minutes, and each comes after every 1-second bar
    that ends with or before it."""
    tape = two_symbols()

    async def body() -> None:
        async with daemon_data(Market(tape)) as (gw, ib, md):
            minutes, quarter = Listener(), Listener()
            inst = await md.instrument("ABC")
            md.subscribe(inst, minutes, MINUTE)
            md.subscribe(inst, quarter, 15 * NS)
            await sync(ib)
            for _ in range(6):
                await gw.advance(30)
                await sync(ib)
            start, now = at("09:30:00"), gw.now_ns()
            assert minutes.close() == tape_bars(tape, "ABC", MINUTE, start, now)
            assert len(minutes.close()) == 3
            assert quarter.close() == tape_bars(tape, "ABC", 15 * NS, start, now)
            for listener in (minutes, quarter):
                for i, (kind, bar) in enumerate(listener.seen):
                    if kind == "close":
                        later = [b for k, b in listener.seen[i:] if k == "fast"]
                        assert all(b.end > bar.end for b in later)

    run(body())
    assert logged_errors == []


def quiet_between(rows: list[Row], start: int, end: int) -> list[Row]:
    """The rows with no trade in ``[start, end)`` (their quotes stay)."""
    return [r._replace(open=None, high=None, low=None, close=None, volume=None)
            if start <= r.time < end else r for r in rows]


def test_ibs_volume_zero_bars_never_become_bars_and_close_a_quiet_tail_at_once(
        logged_errors: list[str]) -> None:
    """IB's 5-second bars every 5 s (volume 0 when quiet) over the real client: the
    minutes and seconds are the tape's traded ones; a quiet minute has no bar."""
    tape = quiet_between(walk(31, "ABC", start="09:29:00", seconds=300),
                         at("09:30:50"), at("09:32:00"))

    async def body() -> None:
        async with daemon_data(Market(tape)) as (gw, ib, md):
            quiet = send_quiet_bars(gw)
            minutes = Listener()
            md.subscribe(await md.instrument("ABC"), minutes, MINUTE)
            await sync(ib)
            await gw.advance_to(at("09:31:00") + NS // 2)
            await sync(ib)
            # The 09:30 minute's last 10 s were quiet: IB's bar of its last 5 s closes it,
            # not the clock (whose grace has not passed; nobody ticked the streams).
            start = at("09:30:00")
            assert minutes.close() == tape_bars(tape, "ABC", MINUTE, start, at("09:31:00"))
            for _ in range(26):
                await gw.advance(5)
                await sync(ib)
                md.on_clock()
            now = gw.now_ns()
            assert [b.start for b in minutes.close()] == [start, at("09:32:00")]  # no 09:31
            assert minutes.close() == tape_bars(tape, "ABC", MINUTE, start, now - now % MINUTE)
            assert minutes.fast() == tape_bars(tape, "ABC", NS, start, minutes.fast()[-1].end)
            assert {("ABC", at("09:31:00") + 5 * NS * i) for i in range(12)} <= set(quiet)

    run(body())
    assert logged_errors == []


def test_ib_async_requests_are_answered_amid_many_streaming_symbols(
        logged_errors: list[str]) -> None:
    symbols = [f"S{i:02d}" for i in range(10)]
    tape = [r for i, s in enumerate(symbols)
            for r in walk(100 + i, s, start="09:25:00", seconds=600, price=f"{10 + i}.00")]

    async def body() -> None:
        async with daemon_data(Market(tape)) as (gw, ib, md):
            listeners = {s: Listener() for s in symbols}
            for s in symbols:
                md.subscribe(await md.instrument(s), listeners[s], MINUTE)
            await sync(ib)
            reads: list[bytes] = []
            ib.client.conn.hasData += reads.append
            for i in range(3):  # ib_async paces requests at 45 a second: stay below
                asked = symbols[3 * i]
                clock = asyncio.ensure_future(ib.reqCurrentTimeAsync())
                details = asyncio.ensure_future(
                    ib.reqContractDetailsAsync(Stock(asked, "SMART", "USD")))
                await asyncio.sleep(0)  # the requests are on the wire first
                await gw.advance(10)
                assert int((await clock).timestamp()) == gw.now_ns() // NS
                [detail] = await details
                assert detail.contract is not None and detail.contract.symbol == asked
            await sync(ib)
            now = gw.now_ns()
            for s in symbols:
                last = known(tape, s, now)[-1]
                stream = md.stream(s)
                assert stream is not None and stream.quote is not None
                assert stream.quote[1:] == (last.bid, last.bid_size, last.ask, last.ask_size)
                assert listeners[s].fast() == tape_bars(tape, s, NS, at("09:30:00"), now)
            shared = [ids for ids in message_ids_by_read(reads)
                      if ids & {b"1", b"2", b"46", b"50"} and ids & {b"10", b"49"}]
            assert shared, "no read carried both market data and an answer to ib_async"

    run(body())
    assert logged_errors == []


def test_after_unsubscribe_the_sim_stops_sending_and_nothing_more_arrives(
        logged_errors: list[str], caplog: pytest.LogCaptureFixture) -> None:
    tape = two_symbols()

    async def body() -> None:
        async with daemon_data(Market(tape)) as (gw, ib, md):
            abc, xyz = Listener(), Listener()
            md.subscribe(await md.instrument("ABC"), abc, MINUTE)
            md.subscribe(await md.instrument("XYZ"), xyz, MINUTE)
            await sync(ib)
            assert len(gw.feeds.subs("ABC", "quotes")) == len(gw.feeds.subs("ABC", "rtbars")) == 1
            await gw.advance(20)  # ABC's data is on its way while the daemon cancels
            md.unsubscribe("ABC", abc)
            await sync(ib)
            assert gw.feeds.subs("ABC", "quotes") == [] and gw.feeds.subs("ABC", "rtbars") == []
            assert gw.feeds.lines_in_use() == 1 and md.symbols == ["XYZ"]
            assert md.stream("ABC") is None
            before, xyz_before = list(abc.seen), len(xyz.seen)
            await gw.advance(60)
            await sync(ib)
            assert abc.seen == before
            assert len(xyz.seen) > xyz_before

    with caplog.at_level("ERROR", logger="ib_async"):
        run(body())
    assert [r.getMessage() for r in caplog.records if "Unknown reqId" in r.getMessage()] == []
    assert logged_errors == []


def test_a_stale_stream_quote_is_replaced_by_a_snapshot_of_the_current_quote() -> None:
    tape = two_symbols()

    async def body() -> None:
        async with daemon_data(Market(tape)) as (gw, ib, md):
            md.subscribe(await md.instrument("ABC"), Listener(), MINUTE)
            await gw.advance(5)
            await sync(ib)
            stream = md.stream("ABC")
            assert stream is not None and stream.quote is not None
            fresh, age = await md.fresh_quote("ABC", 2 * NS, 0.05)
            assert (fresh, age) == (stream.quote, 0)

            gw.stop_market_data("ABC")  # the stream goes quiet; the market does not
            await gw.advance(30)
            await sync(ib)
            stale = stream.quote
            state = gw.market.states["ABC"]
            assert stale is not None and stale[1:] != (state.bid, state.bid_size, state.ask,
                                                       state.ask_size)
            quote, age = await md.fresh_quote("ABC", 2 * NS, 0.05)
            assert age == 0 and quote is not None
            assert quote == (gw.now_ns(), state.bid, state.bid_size, state.ask, state.ask_size)
            assert stream.quote == stale  # the snapshot does not pose as streamed data

    run(body())


# --- raw bytes: framing does not depend on where reads split ----------------------------

SYMBOLS = ("AAA", "BBB", "CCC")
QUOTES_REQ = {"AAA": 11, "BBB": 13, "CCC": 15}
BARS_REQ = {s: req + 1 for s, req in QUOTES_REQ.items()}
FOREIGN_REQ = 99  # e.g. an ib_async snapshot: a tick message, but not the daemon's
T0 = at("10:00:00")


class Sink:
    """A FeedSink recording what it is handed; ``order`` is shared between sinks."""

    def __init__(self, name: str, order: list[tuple[str, str]] | None = None,
                 acts_at: int = 0) -> None:
        self.name = name
        self.order = order if order is not None else []
        self.quotes: list[Quote4] = []
        self.prints: list[tuple[Prints, int | None]] = []
        self.bars: list[Bar] = []
        self.acts_at = acts_at  # a batch whose top reaches this is urgent (0: every one)

    def on_quote(self, bid: int | None, bid_size: int | None, ask: int | None,
                 ask_size: int | None) -> None:
        self.quotes.append((bid, bid_size, ask, ask_size))
        self.order.append((self.name, "quote"))

    def on_prints(self, prints: Prints, second: int | None) -> None:
        self.prints.append((list(prints), second))
        self.order.append((self.name, "prints"))

    def on_bar5(self, bar: Bar) -> None:
        self.bars.append(bar)
        self.order.append((self.name, "bar5"))

    def urgent(self, top: int) -> bool:
        return top >= self.acts_at

    def all_prints(self) -> Prints:
        return [p for prints, _ in self.prints for p in prints]


def feed_wire() -> tuple[FeedWire, list[bytes]]:
    """A FeedWire on an unconnected ib_async client past its handshake; what it would
    hand to ib_async is recorded instead."""
    ib = IB()
    client: Any = ib.client
    client._apiReady = True
    wire = FeedWire(ib)
    passed: list[bytes] = []
    wire._ib_reads = passed.append
    return wire, passed


def routed_wire(acts_at: dict[str, int] | None = None
                ) -> tuple[FeedWire, list[bytes], dict[str, Sink]]:
    """A FeedWire with the three symbols' quote and bar requests routed to sinks
    (``acts_at``: the price at which a symbol's batches become urgent; 0 by default)."""
    wire, passed = feed_wire()
    order: list[tuple[str, str]] = []
    sinks = {s: Sink(s, order, (acts_at or {}).get(s, 0)) for s in SYMBOLS}
    for s in SYMBOLS:
        batch = SymbolBatch(sinks[s])
        wire.route(QUOTES_REQ[s], batch)
        wire.route(BARS_REQ[s], batch)
    return wire, passed, sinks


@dataclass
class WireTape:
    """A generated byte stream and what it must deliver."""

    messages: list[bytes] = field(default_factory=list)
    foreign: list[bytes] = field(default_factory=list)  # the ones ib_async must get
    stamped: dict[str, list[tuple[Prints, int | None]]] = field(default_factory=dict)
    bars: dict[str, list[Bar]] = field(default_factory=dict)
    quote: dict[str, Quote4] = field(default_factory=dict)

    @property
    def data(self) -> bytes:
        return b"".join(self.messages)

    def prints(self, symbol: str) -> Prints:
        return [p for prints, _ in self.stamped[symbol] for p in prints]


def five_second_bar(start: int, prints: Prints) -> Bar:
    """The 5-second TRADES bar of a bucket's prints."""
    prices = [p for p, _ in prints]
    return Bar(start, 5 * NS, prices[0], max(prices), min(prices), prices[-1],
               sum(size for _, size in prints))


class TapeWriter:
    """Writes a random session of the three symbols as the gateway would send it."""

    def __init__(self, seed: int) -> None:
        self.rnd = random.Random(seed)
        self.tape = WireTape()
        self.mids = {s: px(f"{10 * (i + 1)}.00") for i, s in enumerate(SYMBOLS)}
        self.quote = {s: [self.mids[s] - 10_000, 100, self.mids[s] + 10_000, 100]
                      for s in SYMBOLS}
        self.volume = dict.fromkeys(SYMBOLS, 0)
        self.bucket: dict[str, Prints] = {s: [] for s in SYMBOLS}
        for s in SYMBOLS:
            req, q = QUOTES_REQ[s], self.quote[s]
            self.send(out.market_data_type(req))
            self.send(out.tick_price(req, out.BID, q[0], q[1]))
            self.send(out.tick_price(req, out.ASK, q[2], q[3]))
            self.tape.stamped[s], self.tape.bars[s] = [], []

    def send(self, fields: list[object], foreign: bool = False) -> None:
        message = encode(fields)
        self.tape.messages.append(message)
        if foreign:
            self.tape.foreign.append(message)

    def maybe_foreign(self, second: int, chance: float) -> None:
        """Now and then a message ib_async owns."""
        if self.rnd.random() < chance:
            self.send(self.rnd.choice([
                out.current_time(second),
                out.error(-1, 2104, "Market data farm connection is OK:usfarm"),
                out.tick_price(FOREIGN_REQ, out.BID, px("99.50"), 300),
                out.tick_string(FOREIGN_REQ, out.LAST_TIMESTAMP, str(second // NS)),
                out.contract_details_end(7),
            ]), foreign=True)

    def quote_ticks(self, s: str, second: int) -> None:
        rnd, req, q = self.rnd, QUOTES_REQ[s], self.quote[s]
        self.mids[s] += rnd.choice((-10_000, 0, 10_000))
        if rnd.random() < 0.7:
            q[0], q[1] = self.mids[s] - 10_000, rnd.randint(1, 9) * 100
            self.send(out.tick_price(req, out.BID, q[0], q[1]))
        elif rnd.random() < 0.5:
            q[1] = rnd.choice((q[1], q[1] + 100))  # sometimes no change at all
            self.send(out.tick_size(req, out.BID_SIZE, q[1]))
        self.maybe_foreign(second, 0.1)
        if rnd.random() < 0.7:
            q[2], q[3] = self.mids[s] + 10_000, rnd.randint(1, 9) * 100
            self.send(out.tick_price(req, out.ASK, q[2], q[3]))

    def prints(self, s: str, second: int) -> None:
        """LAST ticks, then the volume and the last-trade time, as IB sends a trade."""
        rnd, req = self.rnd, QUOTES_REQ[s]
        prints = [(self.mids[s] + rnd.choice((-10_000, 0, 10_000)), rnd.randint(1, 20) * 100)
                  for _ in range(rnd.choice((0, 1, 1, 2, 3)))]
        for price, size in prints:
            self.send(out.tick_price(req, out.LAST, price, size))
            self.maybe_foreign(second, 0.1)
        if prints:
            self.volume[s] += sum(size for _, size in prints)
            self.send(out.tick_size(req, out.VOLUME, self.volume[s]))
            self.send(out.tick_string(req, out.LAST_TIMESTAMP, str(second // NS)))
            self.tape.stamped[s].append((prints, second))
            self.bucket[s] += prints

    def bars(self, start: int) -> None:
        """The bucket ended: each symbol's 5-second bar, if it traded."""
        for s in SYMBOLS:
            if self.bucket[s]:
                bar = five_second_bar(start, self.bucket[s])
                self.send(out.realtime_bar(BARS_REQ[s], AggBar(bar, bar.close, 5)))
                self.tape.bars[s].append(bar)
            self.bucket[s] = []


def wire_tape(seed: int, seconds: int = 20) -> WireTape:
    """Several symbols' quote ticks, prints with their tick 45 and 5-second bars, in
    the sim's encoding, with messages ib_async owns sprinkled in between."""
    writer = TapeWriter(seed)
    for i in range(seconds):
        second = T0 + i * NS
        for s in writer.rnd.sample(SYMBOLS, len(SYMBOLS)):
            writer.quote_ticks(s, second)
            writer.prints(s, second)
            writer.maybe_foreign(second, 0.15)
        if (i + 1) % 5 == 0:
            writer.bars(second + NS - 5 * NS)
    writer.tape.quote = {s: (q[0], q[1], q[2], q[3]) for s, q in writer.quote.items()}
    return writer.tape


TAPE = wire_tape(7)
DATA = TAPE.data


def reads_at(data: bytes, cuts: list[int]) -> list[bytes]:
    """``data`` split at ``cuts`` into non-empty reads."""
    bounds = [0, *sorted(set(cuts)), len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:], strict=False) if b > a]


def whole_messages(chunk: bytes) -> bool:
    """True when ``chunk`` is one or more complete frames, nothing more."""
    pos = 0
    while pos < len(chunk):
        if len(chunk) - pos < 4:
            return False
        pos += 4 + int.from_bytes(chunk[pos:pos + 4], "big")
    return pos == len(chunk)


def test_the_generated_stream_is_delivered_whole_when_read_at_once() -> None:
    wire, passed, sinks = routed_wire()
    wire.on_data(DATA)
    for s in SYMBOLS:
        assert sinks[s].prints == TAPE.stamped[s]
        assert sinks[s].bars == TAPE.bars[s] and len(TAPE.bars[s]) >= 3
        assert sinks[s].quotes[-1] == TAPE.quote[s]
    assert b"".join(passed) == b"".join(TAPE.foreign)
    assert all(whole_messages(chunk) for chunk in passed)
    assert len(TAPE.foreign) > 10


@settings(derandomize=True, max_examples=80, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0, max_value=len(DATA)), max_size=80),
       acts_at=st.fixed_dictionaries({s: st.sampled_from((0, px("10.00"), 2**62))
                                      for s in SYMBOLS}))
def test_what_arrives_does_not_depend_on_where_the_reads_split(
        cuts: list[int], acts_at: dict[str, int]) -> None:
    """Nor on which symbols' batches are urgent and which wait for the end of a read."""
    wire, passed, sinks = routed_wire(acts_at)
    for chunk in reads_at(DATA, cuts):
        wire.on_data(chunk)
    for s in SYMBOLS:
        assert sinks[s].all_prints() == TAPE.prints(s)
        assert sinks[s].bars == TAPE.bars[s]
        assert sinks[s].quotes[-1] == TAPE.quote[s]
    assert b"".join(passed) == b"".join(TAPE.foreign)
    assert all(whole_messages(chunk) for chunk in passed)


def test_one_byte_per_read_still_delivers_everything_in_order() -> None:
    wire, passed, sinks = routed_wire()
    for i in range(len(DATA)):
        wire.on_data(DATA[i:i + 1])
    for s in SYMBOLS:
        assert sinks[s].all_prints() == TAPE.prints(s) and sinks[s].bars == TAPE.bars[s]
        assert sinks[s].quotes[-1] == TAPE.quote[s]
    assert passed == TAPE.foreign  # each one whole, on the read that completed it


def test_a_partial_message_at_the_end_of_a_read_is_completed_by_the_next() -> None:
    wire, passed, sinks = routed_wire()
    bid = encode(out.tick_price(QUOTES_REQ["AAA"], out.BID, px("10.01"), 300))
    clock = encode(out.current_time(T0))
    wire.on_data(bid[:3])  # not even the length yet
    wire.on_data(bid[3:9])
    assert sinks["AAA"].quotes == []
    wire.on_data(bid[9:] + clock[:5])
    assert sinks["AAA"].quotes == [(px("10.01"), 300, None, None)]
    assert passed == []
    wire.on_data(clock[5:])
    assert passed == [clock]


# --- SymbolBatch: ib_async's tick rules, one symbol at a time ---------------------------


def fed(*messages: list[object]) -> tuple[Sink, list[bytes]]:
    """AAA's sink and what went to ib_async after one read of ``messages`` (and after
    the daemon's periodic release of prints kept for a tick 45 that never came)."""
    wire, passed, sinks = routed_wire()
    wire.on_data(b"".join(encode(m) for m in messages))
    wire.release_held()
    return sinks["AAA"], passed


A = QUOTES_REQ["AAA"]


def last(price: str, size: int) -> list[object]:
    return out.tick_price(A, out.LAST, px(price), size)


def stamp(second: int) -> list[object]:
    return out.tick_string(A, out.LAST_TIMESTAMP, str(second // NS))


def test_prints_take_the_second_of_the_tick_45_that_follows_them() -> None:
    sink, _ = fed(last("5.00", 100), last("5.01", 200), stamp(T0),
                  last("5.02", 300), out.tick_size(A, out.VOLUME, 600), stamp(T0 + NS),
                  last("5.03", 100), stamp(T0 + NS))
    assert sink.prints == [
        ([(px("5.00"), 100), (px("5.01"), 200)], T0),
        ([(px("5.02"), 300), (px("5.03"), 100)], T0 + NS),
    ]


def test_prints_with_no_tick_45_after_them_are_handed_over_without_a_second() -> None:
    sink, _ = fed(last("5.00", 100), stamp(T0), last("5.01", 200),
                  out.tick_price(A, 68, px("5.02"), 50))  # DELAYED_LAST is a print too
    assert sink.prints == [([(px("5.00"), 100)], T0),
                           ([(px("5.01"), 200), (px("5.02"), 50)], None)]


def test_a_tick_45_with_no_prints_before_it_stamps_nothing() -> None:
    sink, _ = fed(stamp(T0), out.tick_string(A, out.LAST_TIMESTAMP, "soon"), last("5.00", 1))
    assert sink.prints == [([(px("5.00"), 1)], None)]


def test_a_bid_or_ask_of_size_zero_empties_that_side() -> None:
    sink, _ = fed(out.tick_price(A, out.BID, px("4.99"), 300),
                  out.tick_price(A, out.ASK, px("5.01"), 200))
    assert sink.quotes == [(px("4.99"), 300, px("5.01"), 200)]
    sink, _ = fed(out.tick_price(A, out.BID, px("4.99"), 300),
                  out.tick_price(A, out.ASK, px("5.01"), 200),
                  out.tick_price(A, out.BID, px("4.98"), 0))
    assert sink.quotes == [(None, None, px("5.01"), 200)]
    sink, _ = fed(out.tick_price(A, out.BID, px("4.99"), 300),
                  out.tick_price(A, out.ASK, px("5.01"), 200),
                  out.tick_size(A, out.ASK_SIZE, 0))
    assert sink.quotes == [(px("4.99"), 300, None, None)]


def test_a_size_tick_equal_to_the_current_size_is_no_change() -> None:
    wire, _, sinks = routed_wire()
    wire.on_data(encode(out.tick_price(A, out.BID, px("4.99"), 300)))
    wire.on_data(encode(out.tick_size(A, out.BID_SIZE, 300)))
    assert sinks["AAA"].quotes == [(px("4.99"), 300, None, None)]
    wire.on_data(encode(out.tick_size(A, out.BID_SIZE, 400)))
    assert sinks["AAA"].quotes[-1] == (px("4.99"), 400, None, None)


def test_an_empty_price_is_no_tick() -> None:
    sink, _ = fed(out.tick_price(A, out.BID, px("4.99"), 300),
                  [1, 6, A, out.BID, "", 500, 0],
                  [1, 6, A, out.LAST, "", 500, 0])
    assert sink.quotes == [(px("4.99"), 300, None, None)]
    assert sink.prints == []


def test_a_realtime_bar_comes_after_the_quote_and_prints_of_its_batch() -> None:
    bar = Bar(T0, 5 * NS, px("5.00"), px("5.05"), px("4.95"), px("5.01"), 900)
    sink, _ = fed(out.realtime_bar(BARS_REQ["AAA"], AggBar(bar, px("5.00"), 5)),
                  last("5.01", 100), stamp(T0 + 5 * NS),
                  out.tick_price(A, out.BID, px("5.00"), 100))
    assert sink.bars == [bar]
    assert sink.order == [("AAA", "quote"), ("AAA", "prints"), ("AAA", "bar5")]


def test_a_last_tick_of_size_zero_is_a_price_not_a_print() -> None:
    sink, _ = fed(last("5.40", 0), stamp(T0), last("5.01", 100), stamp(T0 + NS))
    assert sink.prints == [([(px("5.01"), 100)], T0 + NS)]


def test_a_volume_zero_realtime_bar_is_handed_over_as_no_trade_and_is_never_urgent() -> None:
    wire, _, sinks = routed_wire({"AAA": px("5.00"), "BBB": 0})
    quiet = Bar(T0, 5 * NS, px("5.40"), px("5.40"), px("5.40"), px("5.40"), 0)
    wire.on_data(b"".join(encode(m) for m in (
        out.realtime_bar(BARS_REQ["AAA"], AggBar(quiet, px("5.40"), 0)),
        out.tick_price(QUOTES_REQ["BBB"], out.BID, px("7.00"), 100))))
    assert sinks["AAA"].bars == [quiet]
    assert sinks["AAA"].order[0] == ("BBB", "quote")  # not urgent: handed over after BBB's


def test_a_symbols_batch_is_handed_over_when_another_symbols_message_comes() -> None:
    wire, _, sinks = routed_wire()
    b = QUOTES_REQ["BBB"]
    wire.on_data(b"".join(encode(m) for m in (
        out.tick_price(A, out.BID, px("4.99"), 100),
        out.current_time(T0),  # ib_async's: does not end AAA's batch
        out.tick_price(A, out.ASK, px("5.01"), 100),
        out.tick_price(b, out.BID, px("7.99"), 100),
        out.tick_price(A, out.BID, px("4.98"), 100),
    )))
    assert sinks["AAA"].order == [("AAA", "quote"), ("BBB", "quote"), ("AAA", "quote")]
    assert sinks["AAA"].quotes == [(px("4.99"), 100, px("5.01"), 100),
                                   (px("4.98"), 100, px("5.01"), 100)]


def test_in_a_burst_the_symbol_whose_prices_reach_its_level_is_handed_over_first() -> None:
    """Every symbol's 5-second bar in one read, as IB sends them after the boundary:
    CCC's bar reaches its watcher's level and goes at once; AAA and BBB, far below
    theirs, after the read, in the order they came."""
    wire, _, sinks = routed_wire({"AAA": px("20.00"), "BBB": px("20.00"), "CCC": px("10.00")})
    bar = {s: Bar(T0, 5 * NS, px(p), px(h), px(p), px(p), 100)
           for s, p, h in (("AAA", "9.00", "9.10"), ("BBB", "9.50", "9.60"),
                           ("CCC", "9.90", "10.00"))}
    wire.on_data(b"".join(encode(out.realtime_bar(BARS_REQ[s], AggBar(bar[s], bar[s].close, 5)))
                          for s in ("AAA", "BBB", "CCC", "BBB")))
    # BBB came twice: its first bar, put aside, went out before its second was taken
    assert sinks["AAA"].order == [("CCC", "bar5"), ("BBB", "bar5"), ("BBB", "bar5"),
                                  ("AAA", "bar5")]
    assert [sinks[s].bars for s in SYMBOLS] == [[bar["AAA"]], [bar["BBB"]] * 2, [bar["CCC"]]]


def test_prints_reaching_the_level_make_their_batch_urgent_and_a_hand_over_resets_it() -> None:
    wire, _, sinks = routed_wire({s: px("10.00") for s in SYMBOLS})
    a, b = QUOTES_REQ["AAA"], QUOTES_REQ["BBB"]
    wire.on_data(b"".join(encode(m) for m in (
        out.tick_price(a, out.LAST, px("9.99"), 100),  # below AAA's level: waits
        out.tick_price(b, out.LAST, px("10.00"), 100),  # at BBB's: goes at once
        out.tick_price(a, out.BID, px("9.98"), 100),
        out.current_time(T0),
    )))
    assert sinks["AAA"].order == [("BBB", "prints"), ("AAA", "prints"), ("AAA", "quote")]


def test_a_symbol_whose_quote_an_entry_waits_for_is_always_urgent() -> None:
    """A trigger with a stale quote waits (quote_warmup) for the next one: its symbol's
    data never waits for the end of a read, whatever the prices."""
    from breakoutd.ibkr.market_data import _StreamSink

    stream = SymbolStream("T", ManualClock(T0))
    stream.add_listener(Listener(), MINUTE, px("50.00"))
    sink = _StreamSink(stream)
    assert not sink.urgent(px("10.00"))
    loop = asyncio.new_event_loop()
    try:
        waiter: asyncio.Future[None] = loop.create_future()
        sink.quote_waiters.append(waiter)
        assert sink.urgent(0)
        sink.on_quote(px("9.99"), 100, px("10.01"), 100)
        assert waiter.done()
    finally:
        loop.close()


def test_a_malformed_message_is_dropped_and_logged_and_the_rest_of_the_read_handled(
        logged_errors: list[str]) -> None:
    clock = out.current_time(T0)
    sink, passed = fed([1, 6, A, out.BID],  # no price or size
                       out.tick_price(A, out.BID, px("4.99"), 100),
                       [50, 3, BARS_REQ["AAA"], "soon", "5", "5", "5", "5", 100, "5", 1],
                       clock,
                       last("5.00", 100), stamp(T0))
    assert sink.quotes == [(px("4.99"), 100, None, None)]
    assert sink.prints == [([(px("5.00"), 100)], T0)] and sink.bars == []
    assert passed == [encode(clock)]
    assert len(logged_errors) == 2
    assert all("malformed market data message dropped" in e for e in logged_errors)


def test_messages_of_a_cancelled_request_are_dropped_silently(
        logged_errors: list[str]) -> None:
    wire, passed, sinks = routed_wire()
    wire.unroute(A)
    wire.unroute(12345)  # never routed: nothing to retire
    clock = encode(out.current_time(T0))
    snapshot = encode(out.tick_price(12345, out.BID, px("1.00"), 100))
    wire.on_data(encode(out.tick_price(A, out.BID, px("4.99"), 100)) + clock
                 + encode(last("5.00", 100)) + snapshot)
    assert sinks["AAA"].quotes == [] and sinks["AAA"].prints == []
    assert passed == [clock, snapshot]  # an id never routed is ib_async's
    assert logged_errors == []


def test_wire_values_convert_as_ib_async_reads_them() -> None:
    assert wire_to_micros(b"5.01") == 5_010_000
    assert wire_to_micros(b"0.0001") == 100
    assert [wire_to_micros(x) for x in (b"", b"-1", b"0", b"nan", b"x")] == [None] * 5
    assert [wire_to_size(x) for x in (b"300", b"12.7", b"", b"-1", b"x")] == [300, 12, 0, 0, 0]


# --- a read cut between a print and its timestamp ------------------------------------------


def test_a_read_split_between_a_print_and_its_tick_45_loses_no_later_second(
        logged_errors: list[str]) -> None:
    clock = ManualClock(T0)
    stream = SymbolStream("AAA", clock)
    listener = Listener()
    stream.add_listener(listener, MINUTE)
    wire, _ = feed_wire()
    wire.route(A, SymbolBatch(stream))
    clock.now = T0 + 5 * NS  # the daemon reads a few seconds behind (a burst)
    first = encode(last("5.00", 100)) + encode(stamp(T0 + NS)) + encode(last("5.01", 100))
    wire.on_data(first)  # the read ends before the second print's tick 45
    wire.on_data(encode(stamp(T0 + 2 * NS)) + encode(last("5.02", 100))
                 + encode(stamp(T0 + 3 * NS)))
    # the print kept at the end of the first read got its own second from the next one
    assert [(b.start, b.close) for b in listener.fast()] == [
        (T0 + NS, px("5.00")), (T0 + 2 * NS, px("5.01")), (T0 + 3 * NS, px("5.02"))]
    assert logged_errors == []
