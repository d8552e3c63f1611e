"""``breakoutd sim``: argument handling, and a session as a new user would run it."""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import sys
from pathlib import Path

import pytest
from ib_async import IB

from breakoutd.cli.sim_cmd import SimSetupError, add_sim_parser, build_market, serve_from_args
from tests.sim.simkit import DATA, run, stock, until

ROOT = Path(__file__).resolve().parents[2]


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="breakoutd")
    add_sim_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["sim", *argv])


def test_help_documents_the_fault_syntax(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse("--help")
    text = capsys.readouterr().out
    assert "KIND[=ARG][@HH:MM[:SS]]" in text and "notice=1101@09:41" in text


@pytest.mark.parametrize(("argv", "why"), [
    (["--synthetic", "3"], "needs --symbols"),
    (["--synthetic", "3", "--symbols", "ABC", "--date", "2026-13-01"], "not YYYY-MM-DD"),
    (["--synthetic", "3", "--symbols", "ABC", "--start", "9h35"], "not HH:MM"),
    (["--synthetic", "3", "--symbols", "ABC", "--speed", "0"], "must be positive"),
    (["--tape", "no/such/tape.csv.gz"], "tape not found"),
])
def test_bad_command_lines_say_what_to_fix(argv: list[str], why: str) -> None:
    with pytest.raises(SimSetupError, match=why):
        build_market(parse(*argv))


def test_bad_fault_spec_is_refused_before_listening() -> None:
    args = parse("--synthetic", "3", "--symbols", "ABC", "--fault", "explode@10:00")
    with pytest.raises(SimSetupError, match="unknown kind 'explode'"):
        run(serve_from_args(args, asyncio.Event()))


def test_synthetic_market_served_from_the_command_line_arguments() -> None:
    args = parse("--synthetic", "5", "--symbols", "abc,xyz", "--port", "0", "--start",
                 "10:00:00", "--speed", "50", "--fault", "notice=2104")

    async def body() -> None:
        stop = asyncio.Event()
        ready: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        server = asyncio.create_task(serve_from_args(args, stop, ready.set_result))
        gw = await ready
        ib = IB()
        await ib.connectAsync("127.0.0.1", gw.port, clientId=1)  # type: ignore[attr-defined]
        xyz = await stock(ib, "XYZ")
        ticker = ib.reqMktData(xyz)
        await until(ib, lambda: ticker.bid > 0)
        first = await ib.reqCurrentTimeAsync()
        bars = ib.reqRealTimeBars(xyz, 5, "TRADES", False)
        await until(ib, lambda: len(bars) >= 2)  # the clock runs by itself
        assert (await ib.reqCurrentTimeAsync()) > first
        assert gw.faults.fired == ["notice=2104"]  # type: ignore[attr-defined]
        ib.disconnect()
        stop.set()
        await server

    run(body())


def _tape_args() -> list[str]:
    tape = DATA / "tapes" / "SPY_20131007.csv.gz"
    if tape.exists():
        return ["--tape", str(tape)]
    return ["--synthetic", "9", "--symbols", "SPY", "--date", "2013-10-07"]


def test_breakoutd_sim_process_as_a_new_user_runs_it() -> None:
    async def body() -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "breakoutd.cli.main", "sim", *_tape_args(), "--start",
            "09:35:00", "--port", "0", "--stats", cwd=ROOT, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            assert proc.stderr is not None and proc.stdout is not None
            port = None
            log: list[str] = []
            while port is None:
                line = (await proc.stderr.readline()).decode()
                assert line, "breakoutd sim exited early:\n" + "".join(log)
                log.append(line)
                found = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
                port = int(found.group(1)) if found else None
            ib = IB()
            await ib.connectAsync("127.0.0.1", port, clientId=3)
            spy = await stock(ib, "SPY")
            ticker = ib.reqMktData(spy)
            bars = await ib.reqHistoricalDataAsync(spy, "", "1800 S", "1 min", "TRADES", False,
                                                   keepUpToDate=True)
            assert len(bars) > 0 and str(bars[-1].date).startswith("2013-10-07 09:3")
            await until(ib, lambda: ticker.ask > 0)
            # Prices relative to the ask: the synthetic fallback's SPY may trade below $1.
            digits = 2 if ticker.ask >= 1 else 4
            parent, take, stop = ib.bracketOrder("BUY", 10, round(ticker.ask * 1.001, digits),
                                                 round(ticker.ask * 1.05, digits),
                                                 round(ticker.ask * 0.95, digits))
            trades = [ib.placeOrder(spy, o) for o in (parent, take, stop)]
            await until(ib, lambda: trades[0].orderStatus.status == "Filled")
            await until(ib, lambda: len(ib.positions()) == 1)
            assert ib.positions()[0].position == 10.0
            assert [f.execution.side for f in ib.fills()] == ["BOT"]
            ib.disconnect()
            again = IB()
            await again.connectAsync("127.0.0.1", port, clientId=3)
            children = await again.reqOpenOrdersAsync()
            assert sorted(t.order.orderId for t in children) == [take.orderId, stop.orderId]
            assert [f.execution.orderId for f in again.fills()] == [parent.orderId]
            for trade in children:
                again.cancelOrder(trade.order)
            await until(again, lambda: all(t.orderStatus.status == "Cancelled" for t in children))
            again.disconnect()
            proc.send_signal(signal.SIGINT)
            out, err = await proc.communicate()
            log.append(err.decode())
            assert proc.returncode == 0, "".join(log)
            assert "orders received: 3" in out.decode()
            text = "".join(log)
            assert "client 3 connected" in text and "fill: client 3 order" in text
        finally:
            if proc.returncode is None:  # a failing test must not leave the sim running
                proc.kill()
                await proc.wait()

    run(body(), timeout=90)
