"""``breakoutd sim``: run the simulated IB Gateway on a recorded or synthetic day."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import logging
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from breakoutd.calendar import EXCHANGE_TZ, day_sessions
from breakoutd.sim import (
    FAULT_HELP,
    FaultSpecError,
    Market,
    SimGateway,
    parse_fault,
    serve_sim,
)
from breakoutd.tape import TapeError

DEFAULT_SYNTHETIC_DAY = dt.date(2026, 3, 9)


def add_sim_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``breakoutd sim``."""
    p = sub.add_parser(
        "sim", help="run the simulated IB Gateway (replays a tape for ib_async clients)",
        description="Serve the TWS API on a socket, replaying tapes or a seeded synthetic "
                    "market on a virtual clock, matching orders, and injecting faults. "
                    "Point any ib_async client at --host/--port.",
        epilog=FAULT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    p.add_argument("--port", type=int, default=4002, help="port to listen on (4002; 0: any)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--tape", action="append", type=Path, metavar="FILE",
                     help="a tape v1 file (.csv or .csv.gz); repeat for more symbols or days")
    src.add_argument("--synthetic", type=int, metavar="SEED", help="a seeded synthetic market")
    p.add_argument("--symbols", help="symbols of the synthetic market, e.g. ABC,XYZ")
    p.add_argument("--start", default="09:30:00", metavar="HH:MM:SS",
                   help="virtual start time, exchange time (09:30:00)")
    p.add_argument("--date", metavar="YYYY-MM-DD",
                   help="exchange date (the tape's first day; synthetic: 2026-03-09)")
    p.add_argument("--speed", type=float, default=1.0, metavar="X",
                   help="virtual seconds per real second (1)")
    p.add_argument("--account", default="DU0000001", help="the account shown (DU0000001)")
    p.add_argument("--fault", action="append", default=[], metavar="SPEC",
                   help="inject a fault (syntax below); repeat for more")
    p.add_argument("--md-lines", type=int, default=100, metavar="N",
                   help="market-data lines before error 101, max number of tickers reached (100, as IB's default)")
    p.add_argument("--stats", action="store_true",
                   help="print bar-to-order latency percentiles at exit")
    p.add_argument("--quiet", action="store_true", help="log warnings only")
    p.set_defaults(func=run_sim)


class SimSetupError(ValueError):
    """A command line that cannot start a sim: the message says what to fix."""


def _day_and_start(args: argparse.Namespace, tape_day: dt.date | None) -> tuple[dt.date, dt.time]:
    try:
        day = dt.date.fromisoformat(args.date) if args.date else (tape_day or
                                                                 DEFAULT_SYNTHETIC_DAY)
    except ValueError as exc:
        raise SimSetupError(f"--date {args.date!r} is not YYYY-MM-DD") from exc
    try:
        start = dt.time.fromisoformat(args.start)
    except ValueError as exc:
        raise SimSetupError(f"--start {args.start!r} is not HH:MM[:SS]") from exc
    if args.speed <= 0:
        raise SimSetupError(f"--speed must be positive, got {args.speed}")
    try:
        sessions = day_sessions(day)
    except ValueError as exc:
        raise SimSetupError(f"--date {day}: {exc}") from exc
    if sessions is None:
        logging.getLogger("breakoutd.sim").warning(
            "%s is not a trading day: the market is closed all day", day)
    return day, start


def build_market(args: argparse.Namespace) -> tuple[Market, dt.date, dt.time]:
    """The market and the virtual date and start the command line asks for."""
    if args.synthetic is not None:
        symbols = [s.strip().upper() for s in (args.symbols or "").split(",") if s.strip()]
        if not symbols:
            raise SimSetupError("--synthetic needs --symbols, e.g. --symbols ABC,XYZ")
        day, start = _day_and_start(args, None)
        try:
            return Market.synthetic(args.synthetic, symbols, day), day, start
        except ValueError as exc:
            raise SimSetupError(f"synthetic market: {exc}") from exc
    if args.symbols:
        raise SimSetupError("--symbols goes with --synthetic; a tape brings its own symbols")
    missing = [str(p) for p in args.tape if not p.exists()]
    if missing:
        raise SimSetupError(f"tape not found: {', '.join(missing)}")
    try:
        market = Market.from_files(args.tape)
    except (TapeError, OSError) as exc:
        raise SimSetupError(str(exc)) from exc
    if not market.symbols:
        raise SimSetupError("the tapes hold no rows")
    day, start = _day_and_start(args, market.day)
    return market, day, start


class _VirtualTime(logging.Filter):
    """Stamps each log record with the sim's virtual exchange time."""

    def __init__(self) -> None:
        super().__init__()
        self.clock: Callable[[], int] | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        """Add ``vtime`` to the record."""
        if self.clock is None:
            record.vtime = "--:--:--"
        else:
            local = dt.datetime.fromtimestamp(self.clock() / 1e9, EXCHANGE_TZ)
            record.vtime = f"{local:%H:%M:%S}"
        return True


def _setup_logging(quiet: bool) -> _VirtualTime:
    logger = logging.getLogger("breakoutd.sim")
    stamp = _VirtualTime()
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(stamp)
    handler.setFormatter(logging.Formatter(
        "%(asctime)s [%(vtime)s ET] %(levelname)s %(message)s", "%H:%M:%S"))
    logger.handlers = [handler]
    logger.propagate = False
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
    return stamp


async def serve_from_args(args: argparse.Namespace, stop: asyncio.Event,
                          on_ready: Callable[[SimGateway], None] | None = None,
                          on_created: Callable[[SimGateway], None] | None = None) -> SimGateway:
    """Build and run the gateway the arguments describe until ``stop`` is set."""
    market, day, start = build_market(args)
    try:
        faults = [parse_fault(text, day) for text in args.fault]
    except FaultSpecError as exc:
        raise SimSetupError(str(exc)) from exc
    return await serve_sim(market, host=args.host, port=args.port, account=args.account,
                           speed=args.speed, start=start, day=day, faults=faults,
                           md_lines=args.md_lines, stop=stop, on_created=on_created,
                           on_ready=on_ready)


async def _main(args: argparse.Namespace, stamp: _VirtualTime) -> SimGateway:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)

    def created(gateway: SimGateway) -> None:
        stamp.clock = gateway.now_ns

    return await serve_from_args(args, stop, on_created=created)


def run_sim(args: argparse.Namespace) -> int:
    """Run ``breakoutd sim`` until interrupted; print latency stats if asked."""
    stamp = _setup_logging(args.quiet)
    try:
        gateway = asyncio.run(_main(args, stamp))
    except SimSetupError as exc:
        print(f"breakoutd sim: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # e.g. the port is taken
        print(f"breakoutd sim: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    if args.stats:
        print(gateway.stats.report())
    return 0
