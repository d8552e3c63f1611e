"""Realtime bars as IB sends them, for tests: one every 5 seconds, volume 0 when quiet.

IB sends one every 5 seconds, with volume 0 at the last price when nothing
traded; so does the sim by default (``SimGateway(quiet_bars=True)``,
breakoutd/sim/feeds.py). :func:`send_quiet_bars` stays for the tests that
list every volume-0 bar sent: it makes one gateway's realtime bars IB's by replacing
its feed hub's realtime-bar flush with one that also sends the quiet buckets,
in time order with the traded ones, through the sim's own outgoing messages.
"""

from __future__ import annotations

from breakoutd.core.bars import Bar
from breakoutd.sim import SimGateway
from breakoutd.sim import outgoing as out
from breakoutd.sim.feeds import REALTIME_BAR_NS, Sub, in_rth
from breakoutd.sim.market import AggBar, aggregate


def send_quiet_bars(gw: SimGateway) -> list[tuple[str, int]]:
    """From now on ``gw`` sends IB's volume-0 bars; returns the list of (symbol, start)
    of every volume-0 bar it sends (filled in as they go)."""
    feeds, market = gw.feeds, gw.market
    sent: list[tuple[str, int]] = []
    last_close: dict[int, int | None] = {}  # id(sub) -> the last traded price before its bucket

    def flush_like_ib(sub: Sub, now_ns: int) -> None:
        local = now_ns - market.offsets.get(sub.symbol, 0)
        closed_until = local - local % REALTIME_BAR_NS
        start = sub.next_bucket
        if closed_until <= start:
            return
        if id(sub) not in last_close:
            before = market.bars_between(sub.symbol, 0, start)
            last_close[id(sub)] = before[-1].close if before else None
        traded = {a.bar.start: a for a in aggregate(
            market.bars_between(sub.symbol, start, closed_until), REALTIME_BAR_NS)}
        sub.next_bucket = closed_until
        if feeds.paused or sub.symbol in feeds.stalled:
            return
        for bucket in range(start, closed_until, REALTIME_BAR_NS):
            agg = traded.get(bucket)
            last = last_close[id(sub)]
            if agg is not None:
                last_close[id(sub)] = agg.bar.close
            elif last is None:
                continue  # nothing has traded yet: no last price to send
            else:
                agg = AggBar(Bar(bucket, REALTIME_BAR_NS, last, last, last, last, 0), last, 0)
                sent.append((sub.symbol, bucket))
            if not sub.use_rth or in_rth(bucket):
                sub.session.send_md(sub.symbol, out.realtime_bar(sub.req_id, agg), bar=True)

    feeds._flush_realtime = flush_like_ib  # type: ignore[method-assign]
    return sent
