"""``breakoutd record``: write what the gateway streams for some symbols as tapes."""

from __future__ import annotations

import argparse
import asyncio
import re
import signal
import sys
from pathlib import Path

from loguru import logger

from breakoutd.daemon.console import setup_console
from breakoutd.errors import OperationalError
from breakoutd.ibkr.broker_clock import BrokerClock
from breakoutd.ibkr.settings import BrokerSettings

SYMBOL = re.compile(r"^[A-Z][A-Z0-9.]{0,9}$")


def symbols_arg(text: str) -> list[str]:
    """``A,B,C`` as upper-case tickers, each checked."""
    out = [s.strip().upper() for s in text.split(",") if s.strip()]
    bad = [s for s in out if not SYMBOL.match(s)]
    if not out or bad:
        raise argparse.ArgumentTypeError(
            f"not a list of tickers: {text!r}" + (f" ({', '.join(bad)})" if bad else ""))
    return list(dict.fromkeys(out))


def add_record_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``breakoutd record``."""
    p = sub.add_parser(
        "record", help="record symbols' quotes and trades as tapes",
        description="Subscribe the symbols' quotes and trade prints and write them as tape v1 "
                    "under DIR/tapes/YYYY-MM-DD/tape.csv.gz until SIGTERM or Ctrl-C; replay "
                    "them with `breakoutd sim` and `breakoutd backtest`. Connection settings "
                    "come from IB_HOST, IB_PORT, IB_CLIENT_ID, IB_ACCOUNT and BREAKOUTD_LIVE, "
                    "as for `breakoutd run` (use a client id of its own).")
    p.add_argument("--symbols", type=symbols_arg, required=True, metavar="A,B",
                   help="comma-separated tickers (US stocks on SMART)")
    p.add_argument("--var", type=Path, default=Path("var"), metavar="DIR",
                   help="where the tapes go (default: var)")
    p.add_argument("--log-json", action="store_true",
                   help="one JSON object per log line, for log shipping")
    p.set_defaults(func=record_cmd)


async def _record(args: argparse.Namespace) -> int:
    from breakoutd.daemon.record_only import record_symbols

    console = setup_console(args.log_json)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        return await record_symbols(args.symbols, args.var, BrokerSettings.from_env(), stop,
                                    clock=BrokerClock(), log_event=console)
    finally:
        console.close()


def record_cmd(args: argparse.Namespace) -> int:
    """Record until SIGTERM or SIGINT; exit 0 on a clean stop."""
    try:
        return asyncio.run(_record(args))
    except OperationalError as exc:
        logger.remove()
        print(f"breakoutd: {exc}", file=sys.stderr)
        return 2
    finally:
        logger.remove()
