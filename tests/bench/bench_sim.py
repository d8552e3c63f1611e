"""Simulated gateway throughput and CPU: 500 symbols streaming quotes to one ib_async client.

Run: ``python tests/bench/bench_sim.py [--symbols 500] [--minutes 20] [--speed 200]
[--repeat 3] [--cpu-seconds 20]``.

Two measurements, each the median of ``--repeat`` runs, the sim in its own process:

1. Push rate: a seeded synthetic market of ``--symbols`` symbols is replayed at
   ``--speed`` times real time to one ib_async client subscribed to every
   symbol's quotes (every row of the tape, no conflation). Reported: messages
   per second the client received, and the sim process's CPU time per message.
2. CPU at the tape's own pace: the same market at 1x for ``--cpu-seconds``;
   reported: the sim's CPU share, and that share per 100 symbols.

Correctness check: after each run the client's last bid/ask of every symbol
equals the market state the sim ended at.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import multiprocessing as mp
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from ib_async import IB, Stock  # noqa: E402

from breakoutd.sim import Market, SimGateway  # noqa: E402
from breakoutd.tape import synthetic_tape  # noqa: E402

DAY = dt.date(2026, 3, 9)
START = dt.time(9, 30)


def machine() -> str:
    return (f"{platform.node()}: {platform.processor() or platform.machine()}, "
            f"{os.cpu_count()} cpus, Python {platform.python_version()}")


def build_market(symbols: int, minutes: int) -> Market:
    names = [f"S{i:03d}" for i in range(symbols)]
    end = (dt.datetime.combine(DAY, START) + dt.timedelta(minutes=minutes)).time()
    return Market.from_tape(synthetic_tape(42, names, DAY, start=START, end=end))


def sim_process(symbols: int, minutes: int, speed: float, conn: Any) -> None:
    """The gateway's own process: serve until told to stop, then report CPU and state."""
    market = build_market(symbols, minutes)

    async def main() -> None:
        gw = SimGateway(market, port=0, start=START, day=DAY, manual_clock=True,
                        md_lines=symbols + 10, rate_limit=10_000)
        await gw.start()
        conn.send(gw.port)
        await asyncio.get_running_loop().run_in_executor(None, conn.recv)  # "go"
        cpu0 = time.process_time()
        gw.run_clock(speed)
        await asyncio.get_running_loop().run_in_executor(None, conn.recv)  # "stop"
        await gw.pause_clock()
        cpu = time.process_time() - cpu0
        conn.send(cpu)
        await asyncio.get_running_loop().run_in_executor(None, conn.recv)  # "report"
        quotes = {s: (st.bid, st.ask) for s, st in market.states.items()}
        await gw.stop()
        conn.send(quotes)

    asyncio.run(main())


async def client_run(port: int, symbols: int, conn: Any, seconds: float) -> tuple[int, float, Any]:
    ib = IB()
    await ib.connectAsync("127.0.0.1", port, clientId=1, timeout=30)
    ib.client.MaxRequests = 0
    tickers = {}
    for i in range(symbols):
        contract = Stock(f"S{i:03d}", "SMART", "USD", conId=0)
        details = await ib.reqContractDetailsAsync(contract)
        tickers[contract.symbol] = ib.reqMktData(details[0].contract)
    await ib.reqCurrentTimeAsync()
    received0 = ib.client._numMsgRecv
    conn.send("go")
    t0 = time.perf_counter()
    await asyncio.sleep(seconds)
    conn.send("stop")
    cpu = await asyncio.get_running_loop().run_in_executor(None, conn.recv)
    await ib.reqCurrentTimeAsync()  # everything the sim sent has been handled
    received = ib.client._numMsgRecv - received0
    elapsed = time.perf_counter() - t0
    conn.send("report")
    quotes = await asyncio.get_running_loop().run_in_executor(None, conn.recv)
    ib.disconnect()
    wrong = [s for s, t in tickers.items() if quotes[s][0] is not None
             and (t.bid != t.bid or (round(t.bid * 1e6), round(t.ask * 1e6)) != quotes[s])]
    return received, elapsed, (cpu, wrong)


def one_run(symbols: int, minutes: int, speed: float, seconds: float) -> tuple[float, float]:
    parent, child = mp.Pipe()
    proc = mp.Process(target=sim_process, args=(symbols, minutes, speed, child), daemon=True)
    proc.start()
    port = parent.recv()
    received, elapsed, (cpu, wrong) = asyncio.run(client_run(port, symbols, parent, seconds))
    proc.join(30)
    if wrong:
        raise SystemExit(f"correctness check failed: {len(wrong)} symbols' quotes differ, "
                         f"e.g. {wrong[:3]}")
    return received / elapsed, cpu / elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--symbols", type=int, default=500)
    ap.add_argument("--minutes", type=int, default=20, help="minutes of tape in the market")
    ap.add_argument("--speed", type=float, default=200.0, help="replay speed of the push test")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--cpu-seconds", type=float, default=20.0)
    args = ap.parse_args()
    print(machine())
    push_seconds = args.minutes * 60 / args.speed * 0.9  # stay inside the tape
    rates, shares = [], []
    for _ in range(args.repeat):
        rate, share = one_run(args.symbols, args.minutes, args.speed, push_seconds)
        rates.append(rate)
        shares.append(share)
    rate = statistics.median(rates)
    print(f"push: {args.symbols} symbols at {args.speed:g}x: median {rate:,.0f} messages/s "
          f"to one ib_async client (runs: {', '.join(f'{r:,.0f}' for r in rates)}); "
          f"sim CPU {statistics.median(shares):.0%} of a core")
    cpu_minutes = max(args.minutes, int(args.cpu_seconds // 60) + 1)
    paced = [one_run(args.symbols, cpu_minutes, 1.0, args.cpu_seconds)
             for _ in range(args.repeat)]
    share = statistics.median(s for _, s in paced)
    rate = statistics.median(r for r, _ in paced)
    print(f"1x pace: {args.symbols} symbols, {rate:,.0f} messages/s; sim CPU {share:.1%} of a "
          f"core, {share / args.symbols * 100:.2%} per 100 symbols")
    print("correctness: every symbol's last quote at the client equals the sim's market state")


if __name__ == "__main__":
    main()
