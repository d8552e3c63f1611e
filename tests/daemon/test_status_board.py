"""The status board folds the daemon's events into var/status.json."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest

from breakoutd.core import events as ev
from breakoutd.core.bars import NS
from breakoutd.core.params import Session, StrategyParams, WatcherSpec
from breakoutd.core.prices import to_micros
from breakoutd.daemon.journal import Journal
from breakoutd.daemon.status import StatusBoard, status_path
from breakoutd.daemon.status_replay import journal_events
from breakoutd.daemon.status_view import LINES_PER_STEP
from breakoutd.ibkr.order_book import entry_status

T0 = int(dt.datetime(2026, 3, 9, 13, 30, tzinfo=dt.UTC).timestamp()) * NS  # 09:30 ET
REF = "bo:20260309:rth:AAPL@190"
D = Decimal


def at(seconds: float) -> int:
    return T0 + int(seconds * NS)


def spec(wid: str, symbol: str, level: str, enabled: bool = True,
         sessions: tuple[Session, ...] = (Session.RTH,)) -> WatcherSpec:
    return WatcherSpec(id=wid, symbol=symbol, level=to_micros(level),
                       params=StrategyParams(sessions=sessions), enabled=enabled)


class Scenario:
    """A board on a fake broker clock and a settable live price per symbol."""

    def __init__(self, tmp_path: Path) -> None:
        self.now = T0
        self.prices: dict[str, int] = {}
        self.board = StatusBoard(status_path(tmp_path), clock=lambda: self.now,
                                 wall=lambda: 1_773_063_000.0, pid=4242,
                                 last_price=self.prices.get)

    def feed(self, *events: ev.Event) -> None:
        for e in events:
            self.now = max(self.now, e.at)
            self.board.on_event(e)

    def status(self) -> dict[str, Any]:
        status: dict[str, Any] = json.loads(self.board.encode(), parse_float=Decimal)
        return status

    def watcher(self, wid: str) -> dict[str, Any]:
        return next(w for w in self.status()["watchers"] if w["id"] == wid)


def sent(role: str, rung: int, order_id: int, action: str, otype: str, qty: int,
         limit: str | None, stop: str | None = None) -> ev.OrderSent:
    return ev.OrderSent(at=at(61), order_ref=REF, role=role, rung=rung,  # type: ignore[arg-type]
                        order_id=order_id, parent_id=0 if role == "entry" else 11, symbol="AAPL",
                        action=action, order_type=otype, qty=qty,
                        limit=None if limit is None else D(limit),
                        stop=None if stop is None else D(stop), oca_group="oca", transmit=True)


def status_changed(role: str, rung: int, order_id: int, status: str, filled: int,
                   remaining: int, t: float) -> ev.OrderStatusChanged:
    return ev.OrderStatusChanged(at=at(t), order_ref=REF, role=role,  # type: ignore[arg-type]
                                 rung=rung, order_id=order_id, status=status, filled=filled,
                                 remaining=remaining)


def filled(role: str, rung: int, order_id: int, exec_id: str, side: str, qty: int, price: str,
           t: float) -> ev.OrderFilled:
    return ev.OrderFilled(at=at(t), order_ref=REF, role=role, rung=rung,  # type: ignore[arg-type]
                          order_id=order_id, exec_id=exec_id, symbol="AAPL", side=side, qty=qty,
                          price=D(price), cum_qty=qty)


def started(s: Scenario) -> None:
    """Configured, connected, running, two watchers armed."""
    s.board.set_config(files=["watchlists/today.yaml"], digest="ab" * 32, reloaded_at=None,
                       result="initial", errors=[])
    s.board.set_watcher_specs([spec("AAPL@190", "AAPL", "190.00"), spec("MSFT@420", "MSFT", "420.00"),
                               spec("TSLA@250", "TSLA", "250.00", sessions=(Session.AFTERHOURS,)),
                               spec("OFF@1", "OFF", "1.00", enabled=False)],
                              {"AAPL@190": "rth", "MSFT@420": "rth"})
    s.feed(ev.DaemonState(at=at(-30), state="starting"),
           ev.ConnectionUp(at=at(-29), host="127.0.0.1", port=4002, client_id=7,
                           account="DU1234567", server_version=178, attempt=0),
           ev.DaemonState(at=at(-28), state="running", detail="2 armed"),
           ev.WatcherStarted(at=at(0), watcher_id="AAPL@190", symbol="AAPL", level=D("190.00"),
                             session_day="2026-03-09", disarm_at=at(23400)),
           ev.WatcherStarted(at=at(0), watcher_id="MSFT@420", symbol="MSFT", level=D("420.00"),
                             session_day="2026-03-09", disarm_at=at(23400)))


def entered(s: Scenario) -> None:
    """AAPL breaks out, enters 100 with a two-rung ladder and a stop; the entry fills."""
    s.feed(ev.BreakDetected(at=at(30), watcher_id="AAPL@190", price=D("190.05")),
           ev.Confirmed(at=at(60), watcher_id="AAPL@190", bar_start=at(0), close=D("190.10")),
           ev.OrderIntent(at=at(60), watcher_id="AAPL@190", order_ref=REF, kind="close",
                          trigger_at=at(60), symbol="AAPL", qty=100, entry="limit_at_ask",
                          limit=D("190.12"), take_profits=(D("191.00"), D("192.00")),
                          take_profit_qtys=(50, 50), stop=D("189.00"), stop_limit=D("188.90"),
                          outside_rth=True, tif="DAY"),
           sent("entry", 0, 11, "BUY", "LMT", 100, "190.12"),
           sent("take_profit", 1, 12, "SELL", "LMT", 50, "191.00"),
           sent("take_profit", 2, 13, "SELL", "LMT", 100, "192.00"),
           sent("stop", 0, 14, "SELL", "STP LMT", 100, "188.90", "189.00"),
           status_changed("entry", 0, 11, "Submitted", 0, 100, 61.1),
           filled("entry", 0, 11, "e1", "BOT", 100, "190.10", 61.2),
           ev.CommissionReported(at=at(61.3), order_ref=REF, exec_id="e1", commission=1.0,
                                 realized_pnl=1.7976931348623157e308),
           status_changed("entry", 0, 11, "Filled", 100, 0, 61.3),
           status_changed("take_profit", 1, 12, "Submitted", 0, 50, 61.4),
           status_changed("take_profit", 2, 13, "Submitted", 0, 100, 61.4),
           status_changed("stop", 0, 14, "PreSubmitted", 0, 100, 61.4))


def first_rung(s: Scenario) -> None:
    """The first rung sells 50; the ladder moves the stop to break-even for the other 50."""
    s.feed(filled("take_profit", 1, 12, "e2", "SLD", 50, "191.00", 120),
           ev.StopMoved(at=at(120), order_ref=REF, order_id=14, stop=D("190.10"),
                        stop_limit=D("190.00"), qty=50),
           ev.CommissionReported(at=at(120.1), order_ref=REF, exec_id="e2", commission=1.0,
                                 realized_pnl=43.0),
           status_changed("take_profit", 1, 12, "Filled", 50, 0, 120.1),
           status_changed("take_profit", 2, 13, "Submitted", 0, 50, 120.1))


def test_watchers_are_waiting_until_armed_and_disabled_ones_are_left_out(tmp_path: Path) -> None:
    s = Scenario(tmp_path)
    s.board.set_watcher_specs([spec("AAPL@190", "AAPL", "190.00"),
                               spec("OFF@1", "OFF", "1.00", enabled=False)], {"AAPL@190": "rth"})
    status = s.status()
    assert [(w["id"], w["state"], w["session"]) for w in status["watchers"]] == [
        ("AAPL@190", "waiting", "rth")]
    assert status["watchers"][0]["level"] == D("190.00")
    assert status["state"] == "starting" and status["pid"] == 4242


def test_an_armed_watcher_shows_its_distance_to_the_level(tmp_path: Path) -> None:
    s = Scenario(tmp_path)
    started(s)
    s.prices["AAPL"] = to_micros("189.50")
    aapl = s.watcher("AAPL@190")
    assert aapl["state"] == "armed" and aapl["last_price"] == D("189.50")
    assert aapl["distance_cents"] == 50 and aapl["distance_pct"] == D("0.26")
    assert s.watcher("MSFT@420")["last_price"] is None  # no price yet: no distance
    assert s.watcher("MSFT@420")["distance_cents"] is None
    tsla = s.watcher("TSLA@250")
    assert (tsla["state"], tsla["session"]) == ("waiting", "afterhours")
    s.prices["AAPL"] = to_micros("190.25")
    assert s.watcher("AAPL@190")["distance_cents"] == -25  # negative: above the level


def test_a_watcher_goes_triggered_entered_and_done_when_the_position_is_flat(tmp_path: Path) -> None:
    s = Scenario(tmp_path)
    started(s)
    s.feed(ev.Confirmed(at=at(60), watcher_id="AAPL@190", bar_start=at(0), close=D("190.10")))
    assert s.watcher("AAPL@190")["state"] == "triggered"
    entered(s)
    aapl = s.watcher("AAPL@190")
    assert (aapl["state"], aapl["outcome"], aapl["order_ref"]) == ("entered", "entered", REF)
    first_rung(s)
    assert s.watcher("AAPL@190")["state"] == "entered"  # 50 still held
    s.feed(filled("take_profit", 2, 13, "e3", "SLD", 50, "192.00", 300),
           ev.StopMoved(at=at(300), order_ref=REF, order_id=14, stop=D("190.10"),
                        stop_limit=D("190.00"), qty=0),
           status_changed("take_profit", 2, 13, "Filled", 50, 0, 300.1),
           status_changed("stop", 0, 14, "Cancelled", 0, 50, 300.2))
    aapl = s.watcher("AAPL@190")
    assert (aapl["state"], aapl["outcome"], aapl["reason"]) == ("done", "entered", "closed")
    status = s.status()
    assert status["orders"] == [] and status["positions"] == []
    # 50 x 0.90 + 50 x 1.90 = 140.00, less 2.00 of commissions (e3's has not arrived)
    assert status["pnl"]["realized"] == D("138.00") and status["pnl"]["unrealized"] == 0


def test_rejected_expired_and_stopped_watchers_are_done_with_their_reason(tmp_path: Path) -> None:
    s = Scenario(tmp_path)
    started(s)
    s.feed(ev.FastTriggered(at=at(5), watcher_id="AAPL@190", bar_start=at(4), high=D("190.30"),
                            low=D("190.00"), close=D("190.20")),
           ev.Rejected(at=at(6), watcher_id="AAPL@190", reason="quote_stale", kind="fast",
                       trigger_at=at(5), quote_age=3.1),
           ev.Expired(at=at(600), watcher_id="MSFT@420", reason="max_bars", bars_evaluated=10))
    assert [(w["id"], w["state"], w["outcome"], w["reason"]) for w in s.status()["watchers"]] == [
        ("AAPL@190", "done", "rejected", "quote_stale"),
        ("MSFT@420", "done", "expired", "max_bars"),
        ("TSLA@250", "waiting", None, None)]
    assert s.watcher("AAPL@190")["last_price"] == D("190.20")  # from the trigger's bar
    s.feed(ev.WatcherStarted(at=at(700), watcher_id="TSLA@250", symbol="TSLA", level=D("250.00"),
                             session_day="2026-03-09", disarm_at=at(800)),
           ev.Stopped(at=at(710), watcher_id="TSLA@250", reason="removed"))
    assert s.watcher("TSLA@250")["outcome"] == "stopped"
    s.board.set_watcher_specs([spec("AAPL@190", "AAPL", "190.00")], {})
    # what lived today stays on the board after a reload removed it
    assert [w["id"] for w in s.status()["watchers"]] == ["AAPL@190", "MSFT@420", "TSLA@250"]


def test_open_orders_and_the_position_carry_its_take_profits_and_stop(tmp_path: Path) -> None:
    s = Scenario(tmp_path)
    started(s)
    entered(s)
    s.prices["AAPL"] = to_micros("190.50")
    status = s.status()
    assert [(o["role"], o["rung"], o["id"], o["status"], o["qty"]) for o in status["orders"]] == [
        ("take_profit", 1, 12, "Submitted", 50), ("take_profit", 2, 13, "Submitted", 100),
        ("stop", 0, 14, "PreSubmitted", 100)]
    [pos] = status["positions"]
    assert (pos["symbol"], pos["qty"], pos["avg_price"]) == ("AAPL", 100, D("190.10"))
    assert pos["unrealized"] == D("40.00")
    assert [(t["price"], t["qty"]) for t in pos["take_profits"]] == [
        (D("191.00"), 50), (D("192.00"), 100)]
    assert [(t["price"], t["limit"], t["qty"]) for t in pos["stops"]] == [
        (D("189.00"), D("188.90"), 100)]
    first_rung(s)
    [pos] = s.status()["positions"]
    assert pos["qty"] == 50
    assert [(t["price"], t["qty"]) for t in pos["take_profits"]] == [(D("192.00"), 50)]
    assert [(t["price"], t["limit"], t["qty"]) for t in pos["stops"]] == [
        (D("190.10"), D("190.00"), 50)]
    pnl = s.status()["pnl"]
    assert pnl == {"realized": D("43.00"), "unrealized": D("20.00"), "commissions": D("2.00"),
                   "broker_realized": D("43.00")}


def test_each_stop_shows_the_rule_that_put_it_there(tmp_path: Path) -> None:
    s = Scenario(tmp_path)
    entered(s)
    s.prices["AAPL"] = to_micros("190.50")
    [pos] = s.status()["positions"]
    assert [t["rule"] for t in pos["stops"]] == ["initial"]
    s.feed(ev.StopMoved(at=at(90), order_ref=REF, order_id=14, stop=D("190.10"),
                        stop_limit=D("190.08"), qty=100, rule="breakeven"))
    [pos] = s.status()["positions"]
    assert [(t["price"], t["qty"], t["rule"]) for t in pos["stops"]] == [
        (D("190.10"), 100, "breakeven")]
    first_rung(s)  # a ladder move journalled before rules existed reads as the ladder's
    [pos] = s.status()["positions"]
    assert [t["rule"] for t in pos["stops"]] == ["ladder"]


def test_the_operator_s_new_take_profit_shows_on_the_order(tmp_path: Path) -> None:
    s = Scenario(tmp_path)
    started(s)
    entered(s)
    s.feed(ev.OrderModified(at=at(200), order_ref=REF, role="take_profit", rung=2, order_id=13,
                            qty=100, limit=D("193.00"), stop=None, reason="operator"))
    [pos] = s.status()["positions"]
    assert [t["price"] for t in pos["take_profits"]] == [D("191.00"), D("193.00")]


def test_the_daemon_is_degraded_while_the_connection_is_down(tmp_path: Path) -> None:
    s = Scenario(tmp_path)
    started(s)
    assert s.status()["state"] == "running" and s.status()["broker"]["connected"] is True
    s.feed(ev.ConnectionLost(at=at(100), reason="socket closed"),
           ev.Reconnecting(at=at(100), attempt=1, delay=1.0))
    status = s.status()
    assert status["state"] == "degraded"
    assert status["broker"]["connected"] is False
    assert status["broker"]["last_disconnect_reason"] == "socket closed"
    assert status["broker"]["last_disconnect_at"] is not None
    s.feed(ev.ConnectionUp(at=at(105), host="127.0.0.1", port=4002, client_id=7,
                           account="DU1234567", server_version=178, attempt=1))
    status = s.status()
    assert status["state"] == "running" and status["broker"]["address"] == "127.0.0.1:4002"
    assert status["broker"]["last_disconnect_reason"] == "socket closed"  # still told
    s.feed(ev.DaemonState(at=at(200), state="halted", detail="live account"))
    assert s.status()["state"] == "halted" and s.status()["detail"] == "live account"


def test_an_invalid_reload_shows_its_errors_and_keeps_the_hash(tmp_path: Path) -> None:
    s = Scenario(tmp_path)
    started(s)
    problem = "watchlists/today.yaml:12: watchers[1].level: not a price"
    s.feed(ev.ConfigReloaded(at=at(50), result="invalid", trigger="today.yaml",
                             digest="ab" * 32, errors=(problem,)))
    config = s.status()["config"]
    assert config["result"] == "invalid" and config["errors"] == [problem]
    assert config["hash"] == "ab" * 32 and config["files"] == ["watchlists/today.yaml"]
    assert dt.datetime.fromisoformat(config["reloaded_at"]).timestamp() == at(50) / NS


def test_times_are_iso_8601_with_offset(tmp_path: Path) -> None:
    s = Scenario(tmp_path)
    started(s)
    status = s.status()
    for stamp in (status["heartbeat"], status["started_at"], status["broker"]["server_time"]):
        assert dt.datetime.fromisoformat(stamp).utcoffset() is not None
    assert dt.datetime.fromisoformat(status["heartbeat"]).timestamp() == 1_773_063_000.0


def test_replaying_the_journal_gives_the_same_view(tmp_path: Path) -> None:
    live = Scenario(tmp_path)
    journal = Journal(tmp_path, dt.date(2026, 3, 9))
    original = live.board.on_event

    def journalled(e: ev.Event) -> None:
        journal.write(e)
        original(e)

    live.board.on_event = journalled  # type: ignore[method-assign]
    started(live)
    entered(live)
    first_rung(live)
    journal.close()
    restarted = Scenario(tmp_path)
    restarted.now = live.now
    restarted.board.set_config(files=["watchlists/today.yaml"], digest="ab" * 32,
                               reloaded_at=None, result="initial", errors=[])
    restarted.board.replay(journal_events(journal.dir / "events.jsonl"))
    restarted.board.set_watcher_specs([spec("AAPL@190", "AAPL", "190.00"),
                                       spec("MSFT@420", "MSFT", "420.00"),
                                       spec("TSLA@250", "TSLA", "250.00",
                                            sessions=(Session.AFTERHOURS,))],
                                      {"AAPL@190": "rth", "MSFT@420": "rth"})
    assert restarted.status() == live.status()


@pytest.mark.parametrize("day_two", [False, True])
def test_a_new_exchange_day_starts_today_s_pnl_over(tmp_path: Path, day_two: bool) -> None:
    s = Scenario(tmp_path)
    started(s)
    entered(s)
    first_rung(s)
    later = at(86400) if day_two else at(3600)
    s.feed(ev.DaemonState(at=later, state="running"))
    pnl = s.status()["pnl"]
    assert pnl["realized"] == (0 if day_two else D("43.00"))
    assert [p["qty"] for p in s.status()["positions"]] == [50]  # held overnight


def test_an_entry_found_at_the_broker_after_a_restart_shows_entered(tmp_path: Path) -> None:
    s = Scenario(tmp_path)
    started(s)
    # The statuses as reconciliation words them (an entry IB filled, one it cancelled).
    s.feed(ev.OrderReconciled(at=at(5), order_ref=REF, watcher_id="AAPL@190",
                              status=entry_status("Filled", 100, 0), filled=100),
           ev.OrderReconciled(at=at(5), order_ref="bo:20260309:rth:MSFT@420",
                              watcher_id="MSFT@420", status=entry_status("Cancelled", 0, 0),
                              filled=0))
    assert [(w["state"], w["outcome"], w["reason"]) for w in s.status()["watchers"][:2]] == [
        ("entered", "entered", None), ("done", "entered", "entry cancelled")]


def test_the_file_always_equals_a_fresh_rendering_of_the_model(tmp_path: Path) -> None:
    """Lines are kept between writes: each must change as soon as its row or its price
    does, and a row that goes must go from the file."""
    s = Scenario(tmp_path)

    def fresh() -> Any:
        encoder = msgspec.json.Encoder(decimal_format="number")
        return json.loads(encoder.encode(s.board.snapshot()), parse_float=Decimal)

    steps = [lambda: started(s), lambda: s.prices.update(AAPL=to_micros("189.50")),
             lambda: entered(s), lambda: s.prices.update(AAPL=to_micros("190.75")),
             lambda: s.prices.pop("AAPL"), lambda: first_rung(s),
             lambda: s.board.set_watcher_specs([spec("AAPL@190", "AAPL", "190.00")], {}),
             lambda: s.prices.update(MSFT=to_micros("419.99")),
             lambda: s.prices.update(AAPL=to_micros("191.50")),
             # one order changes, nothing else: its line and its position's exits follow
             lambda: s.feed(status_changed("stop", 0, 14, "Submitted", 0, 50, 200)),
             lambda: s.feed(ev.OrderModified(at=at(201), order_ref=REF, role="take_profit",
                                             rung=2, order_id=13, qty=100, limit=D("192.50"),
                                             stop=None, reason="operator")),
             lambda: s.feed(ev.StopMoved(at=at(202), order_ref=REF, order_id=14,
                                         stop=D("190.50"), stop_limit=D("190.40"), qty=50)),
             lambda: s.feed(filled("take_profit", 2, 13, "e3", "SLD", 50, "192.00", 300),
                            status_changed("take_profit", 2, 13, "Filled", 50, 0, 300))]
    seen = []
    for step in steps:
        step()
        now, expected = s.status(), fresh()
        for section in ("watchers", "orders", "positions", "pnl"):
            assert now[section] == expected[section], section
        seen.append(s.watcher("AAPL@190")["last_price"])
    assert seen[:4] == [None, D("189.50"), D("189.50"), D("190.75")]
    assert seen[4] == D("190.10")  # no live price: the last one the events carried


def test_the_daemon_s_writer_lets_the_event_loop_run_while_it_renders(tmp_path: Path) -> None:
    s = Scenario(tmp_path)
    s.board.set_watcher_specs([spec(f"W{n}", f"S{n}", "10.00") for n in range(300)], {})
    s.prices.update({f"S{n}": to_micros("9.95") for n in range(300)})
    turns = 0

    async def body() -> bytes:
        nonlocal turns
        stop = asyncio.Event()

        async def count() -> None:
            nonlocal turns
            while not stop.is_set():
                turns += 1
                await asyncio.sleep(0)
        counter = asyncio.create_task(count())
        await asyncio.sleep(0)
        before = turns
        data = await s.board._encode_in_steps()
        turns -= before
        stop.set()
        await counter
        return data

    data = asyncio.run(body())
    assert data == s.board.encode()
    assert turns >= 300 // LINES_PER_STEP  # the loop ran between the steps
    assert len(json.loads(data)["watchers"]) == 300
