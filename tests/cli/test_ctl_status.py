"""``breakoutctl status``: the table, and exit codes a script can act on."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest

from breakoutd.cli.ctl import main
from breakoutd.core import events as ev
from breakoutd.core.params import StrategyParams, WatcherSpec
from breakoutd.daemon.status import StatusBoard, status_path

NOW_NS = 1_773_063_000 * 1_000_000_000


def write_status(var: Path, *events: ev.Event, pid: int | None = None,
                 heartbeat_age: float = 0.0) -> None:
    """A status file as the daemon writes it: two watchers, one armed, connected, running."""
    board = StatusBoard(status_path(var), clock=lambda: NOW_NS,
                        wall=lambda: time.time() - heartbeat_age, pid=pid,
                        last_price=lambda s: 189_500_000 if s == "AAPL" else None)
    board.set_config(files=["watchlists/today.yaml"], digest="c0ffee" * 10, reloaded_at=None,
                     result="initial", errors=[])
    board.set_watcher_specs([WatcherSpec("AAPL@190", "AAPL", 190_000_000, StrategyParams()),
                             WatcherSpec("MSFT@420", "MSFT", 420_000_000, StrategyParams())],
                            {"AAPL@190": "rth"})
    for e in (ev.ConnectionUp(at=NOW_NS, host="127.0.0.1", port=4002, client_id=7,
                              account="DU1234567", server_version=178, attempt=0),
              ev.DaemonState(at=NOW_NS, state="running", detail="1 armed, 1 waiting"),
              ev.WatcherStarted(at=NOW_NS, watcher_id="AAPL@190", symbol="AAPL",
                                level=Decimal("190.00"), session_day="2026-03-09",
                                disarm_at=NOW_NS + 10**12), *events):
        board.on_event(e)
    board.write()


def status(var: Path, *args: str) -> int:
    return main(["status", "--var", str(var), *args])


def test_a_running_daemon_exits_0_and_its_table_shows_every_watcher(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_status(tmp_path)
    assert status(tmp_path) == 0
    out = capsys.readouterr().out
    assert "RUNNING (1 armed, 1 waiting)" in out
    assert "connected DU1234567 at 127.0.0.1:4002" in out
    aapl = next(line for line in out.splitlines() if "AAPL@190" in line)
    assert "armed" in aapl and "190.00" in aapl and "189.50" in aapl and "50c (0.26%)" in aapl
    msft = next(line for line in out.splitlines() if "MSFT@420" in line)
    assert "waiting" in msft
    assert "NOT RUNNING" not in out and "STALE" not in out


def test_watchers_a_reload_could_not_apply_are_listed_until_one_applies_them(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    why = "ZZZZ@5: watchlists/today.yaml:9: the gateway does not know the symbol ZZZZ"
    partial = ev.ConfigReloaded(at=NOW_NS, result="partial", trigger="SIGHUP", digest="d",
                                failed=(why,))
    invalid = ev.ConfigReloaded(at=NOW_NS, result="invalid", trigger="SIGHUP", digest="",
                                errors=("watchlists/today.yaml:3: level: not a price",))
    write_status(tmp_path, partial, invalid)  # an invalid reload changed nothing: still failed
    assert status(tmp_path) == 0
    assert f"not applied: {why}" in capsys.readouterr().out
    write_status(tmp_path, partial, ev.ConfigReloaded(at=NOW_NS, result="applied",
                                                      trigger="SIGHUP", digest="e"))
    assert status(tmp_path) == 0
    assert "not applied" not in capsys.readouterr().out


@pytest.mark.parametrize(("events", "shown"), [
    ((ev.ConnectionLost(at=NOW_NS, reason="socket closed"),), "DEGRADED"),
    ((ev.DaemonState(at=NOW_NS, state="halted", detail="live account"),), "HALTED (live account)"),
])
def test_degraded_or_halted_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                    events: tuple[ev.Event, ...], shown: str) -> None:
    write_status(tmp_path, *events)
    assert status(tmp_path) == 1
    assert shown in capsys.readouterr().out


def test_no_status_file_exits_3_and_says_so(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert status(tmp_path) == 3
    assert "NOT RUNNING: no status file at" in capsys.readouterr().out


def test_a_stale_file_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_status(tmp_path, heartbeat_age=60)
    assert status(tmp_path) == 3
    out = capsys.readouterr().out
    assert out.startswith("status is STALE: last heartbeat 60s ago")
    assert "AAPL@190" in out  # the last known state is still shown


def test_a_dead_pid_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    write_status(tmp_path, pid=int(gone.stdout))
    assert status(tmp_path) == 3
    assert "NOT RUNNING: pid" in capsys.readouterr().out


def test_a_stopped_daemon_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_status(tmp_path, ev.DaemonState(at=NOW_NS, state="stopped"))
    assert status(tmp_path) == 3
    assert "stopped" in capsys.readouterr().out


def test_json_prints_the_file_and_var_comes_from_the_environment(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    write_status(tmp_path)
    monkeypatch.setenv("BREAKOUTD_VAR", str(tmp_path))
    assert main(["status", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(status_path(tmp_path).read_text())
    assert [w["id"] for w in printed["watchers"]] == ["AAPL@190", "MSFT@420"]


def test_an_unreadable_file_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status_path(tmp_path).write_text("{not json")
    assert status(tmp_path) == 3
    assert "unreadable status file" in capsys.readouterr().out


def test_orders_positions_and_pnl_are_in_the_table(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    ref = "bo:20260309:rth:AAPL@190"
    write_status(
        tmp_path,
        ev.OrderSent(at=NOW_NS, order_ref=ref, role="take_profit", rung=1, order_id=12,
                     parent_id=11, symbol="AAPL", action="SELL", order_type="LMT", qty=100,
                     limit=Decimal("191.00"), stop=None, oca_group="g", transmit=False),
        ev.OrderSent(at=NOW_NS, order_ref=ref, role="stop", rung=0, order_id=14, parent_id=11,
                     symbol="AAPL", action="SELL", order_type="STP LMT", qty=100,
                     limit=Decimal("188.90"), stop=Decimal("189.00"), oca_group="g",
                     transmit=True),
        ev.OrderFilled(at=NOW_NS, order_ref=ref, role="entry", rung=0, order_id=11,
                       exec_id="e1", symbol="AAPL", side="BOT", qty=100,
                       price=Decimal("190.10"), cum_qty=100, commission=1.0),
        ev.OrderStatusChanged(at=NOW_NS, order_ref=ref, role="entry", rung=0, order_id=11,
                              status="Filled", filled=100, remaining=0))
    assert status(tmp_path) == 0
    out = capsys.readouterr().out
    assert "orders     2 open" in out
    assert "AAPL  100 @ 190.10  last 189.50  unrealized -60.00  tp 191.00x100  sl 189.00/188.90x100" in out
    assert "realized -1.00  unrealized -60.00  commissions 1.00" in out


def test_the_header_counts_the_watchers_as_they_are_now(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The daemon's "running" detail was written at start-up (1 armed, 1 waiting); since
    # then AAPL@190 expired: the header counts the table, not the start-up line.
    write_status(tmp_path, ev.Expired(at=NOW_NS, watcher_id="AAPL@190", reason="session_end",
                                      bars_evaluated=3))
    assert status(tmp_path) == 0
    head = capsys.readouterr().out.splitlines()[0]
    assert head.startswith("breakoutd  RUNNING (0 armed, 1 waiting, 1 done)")


def test_times_say_their_zone_and_the_broker_s_are_exchange_time(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_status(tmp_path)
    assert status(tmp_path) == 0
    out = capsys.readouterr().out.splitlines()
    zone = time.strftime("%Z")
    assert " since " in out[0] and out[0].split(" since ")[1].split("  ")[0].endswith(zone)
    assert out[1].endswith("server time 2026-03-09 09:30:00 ET")  # NOW_NS, 09:30 in New York


def test_a_stopped_or_vanished_daemon_is_not_shown_connected(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_status(tmp_path, ev.DaemonState(at=NOW_NS, state="stopped"))
    assert status(tmp_path) == 3
    out = capsys.readouterr().out
    assert "breakoutd  STOPPED  pid" in out
    assert "broker     not connected: the daemon is not running (it last used DU1234567 at " \
           "127.0.0.1:4002)" in out
    assert "connected DU1234567" not in out
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    write_status(tmp_path, pid=int(gone.stdout))  # killed while running
    assert status(tmp_path) == 3
    out = capsys.readouterr().out
    assert "breakoutd  NOT RUNNING (last state running)" in out and "RUNNING (1 armed" not in out
    assert "broker     not connected" in out


def test_a_moved_stop_shows_its_rule(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ref = "bo:20260309:rth:AAPL@190"
    write_status(
        tmp_path,
        ev.OrderSent(at=NOW_NS, order_ref=ref, role="stop", rung=0, order_id=14, parent_id=11,
                     symbol="AAPL", action="SELL", order_type="STP LMT", qty=100,
                     limit=Decimal("188.90"), stop=Decimal("189.00"), oca_group="g",
                     transmit=True),
        ev.OrderFilled(at=NOW_NS, order_ref=ref, role="entry", rung=0, order_id=11,
                       exec_id="e1", symbol="AAPL", side="BOT", qty=100,
                       price=Decimal("190.10"), cum_qty=100, commission=1.0),
        ev.StopMoved(at=NOW_NS, order_ref=ref, order_id=14, stop=Decimal("190.10"),
                     stop_limit=Decimal("190.08"), qty=100, rule="breakeven"))
    assert status(tmp_path) == 0
    assert "sl 190.10/190.08x100 (breakeven)" in capsys.readouterr().out


def test_a_sliced_position_shows_its_slices_sent_and_filled(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = "bo:20260309:rth:AAPL@190"
    events: list[ev.Event] = []
    for n, qty in ((1, 34), (2, 33)):
        events.append(ev.SliceSent(at=NOW_NS, order_ref=ref, watcher_id="AAPL@190",
                                   symbol="AAPL", number=n, count=3, order_id=10 + n, qty=qty,
                                   limit=Decimal("190.10"), due_at=NOW_NS))
        events.append(ev.OrderFilled(at=NOW_NS, order_ref=ref, role="entry", rung=n,
                                     order_id=10 + n, exec_id=f"e{n}", symbol="AAPL",
                                     side="BOT", qty=qty, price=Decimal("190.10"), cum_qty=qty))
    events.append(ev.SliceSkipped(at=NOW_NS, order_ref=ref, watcher_id="AAPL@190", number=3,
                                  count=3, reason="breaks_exits"))
    write_status(tmp_path, *events)
    assert status(tmp_path) == 0
    assert "slices 2/3 sent, 67 filled (no more: breaks_exits)" in capsys.readouterr().out
