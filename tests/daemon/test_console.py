"""The console: events queued by the event loop, written in order on the console's thread."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import sys
import threading
from collections.abc import Iterator
from decimal import Decimal

import pytest
from loguru import logger

from breakoutd.core import events as ev
from breakoutd.daemon import console as console_mod
from breakoutd.daemon.console import Console, setup_console

LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} [+-]\d\d:\d\d \S+ (\w+) +(.*)$")


def shown(text: str) -> list[tuple[str, str]]:
    """(level, message) of each console line; every line has a time with its UTC offset."""
    out = []
    for line in text.splitlines():
        m = LINE.match(line)
        assert m, line
        out.append((m.group(1), m.group(2)))
    return out


def started(n: int) -> ev.WatcherStarted:
    return ev.WatcherStarted(at=n, watcher_id=f"W{n}", symbol="DEMO", level=Decimal("10.00"),
                             session_day="2026-03-09", disarm_at=n + 1)


@pytest.fixture
def restore_logger() -> Iterator[None]:
    yield
    logger.remove()
    logger.add(sys.stderr)


def test_events_and_other_log_lines_keep_the_order_they_happened_in(restore_logger: None) -> None:
    out = io.StringIO()
    log = setup_console(stream=out)
    log(started(1))
    logger.warning("the gateway is slow")
    log(started(2))
    log.close()
    assert shown(out.getvalue()) == [("INFO", "W1: armed, level 10.00"),
                                     ("WARNING", "the gateway is slow"),
                                     ("INFO", "W2: armed, level 10.00")]


def test_an_event_carries_the_time_it_was_logged_not_when_it_was_written(
        restore_logger: None, monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    log = setup_console(json_lines=True, stream=out)
    gate = threading.Event()
    real = console_mod._log_event

    def held(e: ev.Event, wall: float) -> None:
        gate.wait(5)  # the console's thread is busy until the test lets it go
        real(e, wall)

    monkeypatch.setattr(console_mod, "_log_event", held)
    moment = 1_773_064_800.25  # 2026-03-09 14:00:00.250 UTC
    monkeypatch.setattr(console_mod.time, "time", lambda: moment)
    log(started(1))
    monkeypatch.setattr(console_mod.time, "time", lambda: moment + 60)
    gate.set()
    log.close()
    line = json.loads(out.getvalue())
    when = dt.datetime.fromisoformat(line["time"])
    assert when.timestamp() == pytest.approx(moment, abs=0.001)
    assert when.utcoffset() is not None and line["message"] == "W1: armed, level 10.00"


def test_the_event_loop_never_waits_for_a_slow_stream(restore_logger: None) -> None:
    release = threading.Event()

    class Stuck(io.StringIO):
        def write(self, s: str) -> int:
            release.wait(5)  # a stderr nobody reads
            return super().write(s)

    out = Stuck()
    log = setup_console(stream=out)
    for n in range(50):
        log(started(n))  # returns although nothing can be written
    logger.error("still logging")
    assert out.getvalue() == ""
    release.set()
    log.close()
    assert len(out.getvalue().splitlines()) == 51


def test_after_close_events_are_written_by_their_caller_and_none_is_lost(
        restore_logger: None) -> None:
    out = io.StringIO()
    log = setup_console(stream=out)
    log(started(1))
    log.close()
    log(started(2))
    logger.info("late line")
    assert [m for _, m in shown(out.getvalue())] == [
        "W1: armed, level 10.00", "W2: armed, level 10.00", "late line"]


def test_flush_waits_for_what_was_queued() -> None:
    written: list[str] = []
    c = Console(lambda message: written.append(str(message)))
    logger.remove()
    logger.add(c.sink, format="{message}")
    try:
        for n in range(20):
            c(started(n))
        c.flush()
        assert len(written) == 20
    finally:
        c.close()
        logger.remove()
        logger.add(sys.stderr)


def test_an_event_shows_market_time_in_et_and_other_lines_name_their_zone(
        restore_logger: None) -> None:
    out = io.StringIO()
    log = setup_console(stream=out)
    # 09:30:01.250 on 2026-03-09, a day of daylight saving time in New York (-04:00).
    log(ev.WatcherStarted(at=1_773_063_001_250_000_000, watcher_id="W1", symbol="DEMO",
                          level=Decimal("10.00"), session_day="2026-03-09", disarm_at=0))
    logger.warning("the gateway is slow")
    log.close()
    event_line, other = out.getvalue().splitlines()
    assert event_line == "2026-03-09 09:30:01.250 -04:00 ET INFO    W1: armed, level 10.00"
    zone = dt.datetime.now().astimezone().tzname()
    assert re.match(rf"^\S+ \S+ [+-]\d\d:\d\d {re.escape(str(zone))} WARNING the gateway", other)


def test_a_logged_error_shows_no_local_variables(restore_logger: None) -> None:
    out = io.StringIO()
    log = setup_console(stream=out)
    secret = "hunter2"  # noqa: F841 - what diagnose would print beside the frame
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("failed")
    log.close()
    assert "boom" in out.getvalue() and "hunter2" not in out.getvalue()


def _sent(role: str, rung: int, qty: int, order_type: str, limit: str | None,
          stop: str | None = None) -> ev.OrderSent:
    return ev.OrderSent(at=0, order_ref="bo:20260309:rth:ACME@4.50", role=role,  # type: ignore[arg-type]
                        rung=rung, order_id=16 + rung, parent_id=16, symbol="ACME", action="SELL",
                        order_type=order_type, qty=qty,
                        limit=None if limit is None else Decimal(limit),
                        stop=None if stop is None else Decimal(stop), oca_group="oca", transmit=True)


def test_console_lines_say_what_each_order_sells_and_at_which_prices() -> None:
    from breakoutd.daemon.console import describe

    # A 300-share ladder: rung n's order is sized to rungs 1..n (150, 225, 300).
    lines = [describe(_sent("take_profit", n, qty, "LMT", px))
             for n, qty, px in ((1, 150, "4.60"), (2, 225, "4.75"), (3, 300, "4.90"))]
    assert lines == ["sent take_profit rung 1 #17 SELL 150 ACME LMT 4.60",
                     "sent take_profit rung 2 #18 SELL 75 ACME LMT 4.75",
                     "sent take_profit rung 3 #19 SELL 75 ACME LMT 4.90"]
    def status(rung: int, remaining: int) -> ev.OrderStatusChanged:
        return ev.OrderStatusChanged(at=0, order_ref="bo:20260309:rth:ACME@4.50",
                                     role="take_profit", rung=rung, order_id=16 + rung,
                                     status="PreSubmitted", filled=0, remaining=remaining)

    # At the broker rung 2's order is for 225 until the OCA takes rung 1's fill off it.
    assert describe(status(2, 225)) == "order #18 take_profit rung 2: PreSubmitted 0/225 (rungs 1-2)"
    assert describe(status(2, 75)) == "order #18 take_profit rung 2: PreSubmitted 0/75"
    assert describe(_sent("stop", 0, 300, "STP LMT", "4.38", "4.40")) == (
        "sent stop #16 SELL 300 ACME STP LMT stop 4.40 limit 4.38")
    modified = ev.OrderModified(at=0, order_ref="r", role="stop", rung=0, order_id=20, qty=100,
                                limit=Decimal("167.38"), stop=Decimal("167.40"), reason="sl")
    assert describe(modified) == "order #20 stop modified: 100 stop 167.40 limit 167.38 (sl)"
    moved = ev.StopMoved(at=0, order_ref="r", order_id=20, stop=Decimal("4.50"),
                         stop_limit=Decimal("4.48"), qty=150)
    assert describe(moved) == "stop #20 moved to stop 4.50 limit 4.48 for 150 (ladder)"
    reloaded = ev.ConfigReloaded(at=0, result="applied", trigger="SIGHUP", digest="d",
                                 removed=("X@1.00",), notes=("X@1.00 removed: it entered today",))
    assert describe(reloaded) == ("watchlists applied (SIGHUP): +0 -1 ~0; "
                                  "X@1.00 removed: it entered today")


def test_ib_async_s_own_lines_are_debug_lines_of_the_console(restore_logger: None) -> None:
    import logging

    for verbose in (False, True):
        out = io.StringIO()
        log = setup_console(stream=out, verbose=verbose)
        logging.getLogger("ib_async.client").error("API connection failed: ConnectionRefused")
        log.close()
        lines = shown(out.getvalue())
        assert lines == ([("DEBUG", "ib_async.client: API connection failed: ConnectionRefused")]
                         if verbose else [])
