"""The market scanner in the daemon: scan on the schedule, arm the picks once a day.

At each time of ``scan.at`` (exchange time, on the broker's clock) the
daemon asks IB's scanner for ``rows`` symbols by ``code``, reads each one's
snapshot (last print, day volume, quote) and, for those the cheap filters
pass, the prior regular session's close from the broker's history (within
the pacing limits, shared with named levels); :func:`breakoutd.core.scan.evaluate`
filters and scores them. The ``ScanResult`` is journalled first, then the
template's watcher is planned for every pick (``scan:SYMBOL``) exactly as a
watchlist's watcher is: armed at its window's start, its named level once it
is known, once a day.

A symbol is armed at most once a day: a rescan marks it ``armed_before``.
After a restart the day's journal says which were armed (the ``armed`` of
its ScanResults); they are planned again (a watcher that fired stays done),
and a scan time that passed while the daemon was down is made up at once
(trigger ``start-up``). Scanned watchers are not part of the watchlists'
configuration: a reload leaves them as they are (with the template they were
armed with), and the next day starts without them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from ib_async import IB
from loguru import logger

from breakoutd.calendar import DaySessions, day_sessions, exchange_date, exchange_ns
from breakoutd.core import events as ev
from breakoutd.core.bars import NS, Bar
from breakoutd.core.params import WatcherSpec
from breakoutd.core.scan import (
    CandidateData,
    ScanSettings,
    evaluate,
    filter_reason,
    scanned_spec,
    to_arm,
)
from breakoutd.daemon.levels_live import prior_sessions
from breakoutd.daemon.status_replay import journal_events
from breakoutd.ibkr.broker_clock import host_seconds
from breakoutd.ibkr.scanner import (
    ScannedContract,
    Snapshot,
    scanned_contracts,
    snapshot,
    subscription,
)

if TYPE_CHECKING:
    from breakoutd.daemon.app import Daemon

POLL_SECONDS = 0.05  # broker seconds between looks at the schedule
RETRY_NS = 30 * NS  # a scan that failed is tried again this much later

Scan = Callable[[], Awaitable[list[ScannedContract]]]
SnapshotOf = Callable[[ScannedContract], Awaitable[Snapshot]]
PriorCloseOf = Callable[[ScannedContract], Awaitable[int | None]]


async def candidates(settings: ScanSettings, rows: Sequence[ScannedContract],
                     snapshot_of: SnapshotOf, prior_close_of: PriorCloseOf,
                     watched: Iterable[str] = ()) -> list[CandidateData]:
    """Every row's numbers; the prior close is asked only where the snapshot passes."""
    out: list[CandidateData] = []
    on_list = set(watched)
    for row in rows:
        snap = await snapshot_of(row)
        data = CandidateData(row.symbol, row.rank, snap.last, None, snap.volume, snap.bid,
                             snap.ask)
        if filter_reason(settings, data, on_list) == "no_prior_close":
            data = CandidateData(row.symbol, row.rank, snap.last, await prior_close_of(row),
                                 snap.volume, snap.bid, snap.ask)
        out.append(data)
    return out


def prior_close(bars: Sequence[Bar]) -> int | None:
    """The last print of a regular session's 1-minute bars."""
    return bars[-1].close if bars else None


async def run_scan(settings: ScanSettings, scan: Scan, snapshot_of: SnapshotOf,
                   prior_close_of: PriorCloseOf, *, at: Callable[[], int], trigger: str,
                   armed_today: Iterable[str] = (), watched: Iterable[str] = ()
                   ) -> ev.ScanResult:
    """One scan from the broker's answer to its verdicts (nothing is armed here)."""
    try:
        rows = await scan()
        found = await candidates(settings, rows, snapshot_of, prior_close_of, watched)
    except Exception as exc:
        return ev.ScanResult(at=at(), code=settings.code, trigger=trigger, candidates=(),
                             armed=(), error=str(exc) or type(exc).__name__)
    verdicts = evaluate(settings, found, armed_today, watched)
    return ev.ScanResult(at=at(), code=settings.code, trigger=trigger, candidates=verdicts,
                         armed=tuple(scanned_spec(settings.template, s).id
                                     for s in to_arm(verdicts)))


def broker_scan(ib: IB, settings: ScanSettings) -> Scan:
    """The scanner request of ``settings`` on a connection."""
    sub = subscription(settings.code, settings.rows, settings.min_price, settings.max_price,
                       settings.min_volume)
    return lambda: scanned_contracts(ib, sub)


class Scanning:
    """The daemon's scans of one trading day and the watchers they armed."""

    def __init__(self, daemon: Daemon) -> None:
        self._d = daemon
        self._day: dt.date | None = None
        self.armed: dict[str, WatcherSpec] = {}  # today's scanned watchers, by id
        self._last_scan = 0  # the instant of today's latest scan that ran
        self._retry_at = 0
        self._first = True

    def specs(self) -> list[WatcherSpec]:
        """Today's scanned watchers (for status)."""
        return list(self.armed.values())

    async def start(self, stop: asyncio.Event) -> asyncio.Task[None]:
        """Plan the watchers today's journal says were scanned; the task keeping the schedule."""
        self._new_day()
        if self.armed:
            await self._d.arm_scanned(list(self.armed.values()))
        return asyncio.get_running_loop().create_task(self._loop(stop))

    def _new_day(self) -> None:
        d = self._d
        self._day, self.armed, self._last_scan, self._retry_at = d.day, {}, 0, 0
        settings = d.config.scan if d.config is not None else None
        journal = d.var / "journal" / d.day.isoformat() / "events.jsonl"
        for e in journal_events(journal):
            if not isinstance(e, ev.ScanResult) or e.error:
                continue
            self._last_scan = max(self._last_scan, e.at)
            for wid in e.armed:
                if settings is None:
                    logger.warning("{} was scanned today, but the watchlists have no scan "
                                   "block to make it a watcher with: not armed again", wid)
                    continue
                symbol = wid.split(":", 1)[1]
                self.armed[wid] = scanned_spec(settings.template, symbol)

    async def _loop(self, stop: asyncio.Event) -> None:
        d = self._d
        while not stop.is_set():
            if self._day != d.day:
                self._new_day()
            due = self._due(d.clock())
            if due is not None:
                trigger = "start-up" if self._first else "schedule"
                try:
                    await self.scan_and_arm(trigger)
                except Exception as exc:  # the next scan time tries again
                    logger.opt(exception=exc).error("the scan failed: {}", exc)
                    self._retry_at = d.clock() + RETRY_NS
            self._first = False
            await asyncio.sleep(host_seconds(d.clock, POLL_SECONDS))

    def _due(self, now: int) -> int | None:
        """The latest scan instant passed and not scanned since, if any."""
        settings = self._d.config.scan if self._d.config is not None else None
        if settings is None or now < self._retry_at:
            return None
        passed = [t for t in scan_instants(settings, exchange_date(now)) if t <= now]
        if not passed or self._last_scan >= passed[-1]:
            return None
        return passed[-1]

    async def scan_and_arm(self, trigger: str) -> ev.ScanResult:
        """Scan now, journal the result, arm the picks."""
        d = self._d
        assert d.config is not None and d.config.scan is not None
        settings = d.config.scan
        already = {s.symbol for s in self.armed.values()}
        watched = {w.symbol for w in d.config.watchers if w.enabled}
        result = await run_scan(settings, broker_scan(d.ib, settings), self._snapshot_of,
                                self._prior_close_of, at=d.clock, trigger=trigger,
                                armed_today=already, watched=watched)
        d.emit(result)
        if result.error:
            self._retry_at = d.clock() + RETRY_NS
            return result
        self._last_scan = result.at
        picks = [scanned_spec(settings.template, wid.split(":", 1)[1]) for wid in result.armed]
        for spec in picks:
            self.armed[spec.id] = spec
        if picks:
            await d.arm_scanned(picks)
        return result

    async def _snapshot_of(self, row: ScannedContract) -> Snapshot:
        inst = await self._d.instrument(row.symbol)
        return await snapshot(self._d.ib, inst.contract)

    async def _prior_close_of(self, row: ScannedContract) -> int | None:
        d = self._d
        inst = await d.instrument(row.symbol)
        sessions: DaySessions | None = inst.sessions.get(d.day) or day_sessions(d.day)
        if sessions is None:
            return None
        prior = prior_sessions(sessions, inst.sessions)
        if prior is None:
            return None
        return prior_close(await d.levels.bars(row.symbol, *prior.rth))


def scan_instants(settings: ScanSettings, day: dt.date) -> list[int]:
    """The day's scan instants (ns), ascending."""
    return [exchange_ns(day, dt.time(t // 3600, t // 60 % 60, t % 60)) for t in settings.times]
