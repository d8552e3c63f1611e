"""Session arming on APScheduler's AsyncIOScheduler, in exchange time.

Jobs are instants on the broker's clock (the gateway's time, the simulated
gateway's virtual day) turned into host instants through the clock's offset,
and every trigger carries America/New_York, whatever the host's timezone.
Choices the operator can rely on:

- Arming jobs fire at each watcher's window start; the daily re-plan runs at
  03:30 exchange time: never at local midnight (APScheduler 3 misplans
  jobs around midnight on DST change days) and never inside the 02:00-03:00
  hour that a DST change skips or repeats.
- Misfires are explicit: jobs coalesce, and one that fires late by up to
  ``MISFIRE_GRACE`` seconds (a suspended host, a busy loop) still runs; the
  daemon's own tick arms anything whose instant has passed in any case, so
  a missed job can never leave a watcher unarmed.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger

from breakoutd.calendar import EXCHANGE_TZ
from breakoutd.core.bars import NS
from breakoutd.ibkr.broker_clock import clock_rate

MISFIRE_GRACE = 30
REPLAN_AT = dt.time(3, 30)


class SessionScheduler:
    """APScheduler jobs at broker-clock instants."""

    def __init__(self, clock: Callable[[], int], host_now: Callable[[], int] = time.time_ns) -> None:
        self._clock = clock
        self._host_now = host_now
        self.scheduler = AsyncIOScheduler(
            timezone=EXCHANGE_TZ,
            job_defaults={"coalesce": True, "max_instances": 1,
                          "misfire_grace_time": MISFIRE_GRACE})

    def host_time(self, broker_ns: int) -> dt.datetime:
        """The host instant at which the broker's clock will read ``broker_ns``
        (a simulated clock may run faster than the host's)."""
        now, host = self._clock(), self._host_now()
        ahead = broker_ns - now
        if ahead > 0:
            ahead = int(ahead / clock_rate(self._clock))
        return dt.datetime.fromtimestamp((host + ahead) / NS, EXCHANGE_TZ)

    def at(self, job_id: str, broker_ns: int, func: Callable[..., Any], *args: Any) -> None:
        """Run ``func(*args)`` once when the broker's clock reaches ``broker_ns``.

        Give a coroutine function: APScheduler runs plain functions in a thread pool,
        and the daemon's state belongs to the event loop."""
        self.scheduler.add_job(func, DateTrigger(self.host_time(broker_ns), EXCHANGE_TZ),
                               args=args, id=job_id, replace_existing=True)

    def cancel(self, job_id: str) -> None:
        """Drop a job if it is still waiting."""
        if self.scheduler.get_job(job_id) is not None:
            self.scheduler.remove_job(job_id)

    def daily(self, job_id: str, func: Callable[..., Any], at: dt.time = REPLAN_AT) -> None:
        """Run ``func`` every day at ``at`` exchange time (never near midnight)."""
        self.scheduler.add_job(func, daily_trigger(at), id=job_id, replace_existing=True)

    def start(self) -> None:
        """Start running jobs on the current event loop."""
        self.scheduler.start()

    def shutdown(self) -> None:
        """Stop; waiting jobs are dropped."""
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)


def daily_trigger(at: dt.time = REPLAN_AT) -> CronTrigger:
    """The re-plan trigger: ``at`` exchange time, refused within an hour of midnight
    and inside the hour a DST change skips or repeats."""
    if at.hour in (23, 0, 2):
        raise ValueError(f"{at} is too close to midnight or a DST change for a daily job")
    return CronTrigger(hour=at.hour, minute=at.minute, second=at.second, timezone=EXCHANGE_TZ)
