"""``breakoutd run``: the daemon, against a gateway or the embedded simulated one."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from loguru import logger

from breakoutd.config import ConfigError
from breakoutd.core import events as ev
from breakoutd.daemon.console import setup_console
from breakoutd.daemon.notify import SystemdNotifier
from breakoutd.errors import OperationalError
from breakoutd.ibkr.broker_clock import BrokerClock
from breakoutd.ibkr.settings import BrokerSettings

if TYPE_CHECKING:
    from breakoutd.sim import SimGateway


def metrics_address(text: str) -> tuple[str, int]:
    """``--metrics``: ``HOST:PORT`` or ``PORT``."""
    from breakoutd.daemon.metrics import parse_address

    try:
        return parse_address(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_run_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``breakoutd run``."""
    p = sub.add_parser(
        "run", help="run the daemon",
        description="Arm the watchlists' watchers on the broker's clock and trade them. "
                    "Connection settings come from IB_HOST, IB_PORT, IB_CLIENT_ID, IB_ACCOUNT "
                    "and BREAKOUTD_LIVE.")
    p.add_argument("--watchlists", type=Path, default=None, metavar="DIR",
                   help="watchlist directory or file (default: $BREAKOUTD_WATCHLISTS or "
                        "watchlists)")
    p.add_argument("--var", type=Path, default=None, metavar="DIR",
                   help="where journals and state go (default: $BREAKOUTD_VAR or var), as "
                        "for breakoutctl")
    p.add_argument("--sim", action="store_true",
                   help="run against the embedded simulated gateway on a virtual trading day")
    p.add_argument("--sim-seed", type=int, default=None, metavar="SEED",
                   help="with --sim: a seeded random market instead of the scripted demo")
    p.add_argument("--sim-speed", type=float, default=1.0, metavar="X",
                   help="virtual seconds per real second (with --sim; the daemon's clock follows)")
    p.add_argument("--record", action="store_true",
                   help="also write what the market data reads as tapes under "
                        "DIR/tapes/YYYY-MM-DD/tape.csv.gz (replay with sim and backtest)")
    p.add_argument("--metrics", type=metrics_address, metavar="[HOST:]PORT",
                   help="serve Prometheus metrics at http://HOST:PORT/metrics (HOST defaults "
                        "to 127.0.0.1, loopback: see docs/deploy.md)")
    p.add_argument("--log-json", action="store_true",
                   help="one JSON object per log line, for log shipping")
    p.add_argument("-v", "--verbose", action="store_true", help="also show debug lines")
    p.set_defaults(func=run_daemon_cmd)


async def _run(args: argparse.Namespace) -> int:
    console = setup_console(args.log_json, verbose=args.verbose)
    try:
        return await _run_with(args, console)
    finally:
        console.close()  # every event queued for the console is written


async def _run_with(args: argparse.Namespace, log_event: Callable[[ev.Event], None]) -> int:
    from breakoutd.daemon.app import Daemon

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    settings = BrokerSettings.from_env()
    sim = None
    clock: Callable[[], int] = BrokerClock()
    if args.sim:
        if args.sim_speed <= 0:
            raise OperationalError(f"--sim-speed must be positive, got {args.sim_speed:g}")
        sim = await _start_sim(args)
        settings = BrokerSettings(host="127.0.0.1", port=sim.port, client_id=settings.client_id)
        from breakoutd.daemon.simmode import GatewayClock

        clock = GatewayClock(sim)
    try:
        daemon = Daemon(watchlists=args.watchlist_paths, var=args.var, settings=settings,
                        clock=clock, log_event=log_event, notifier=SystemdNotifier(),
                        record=args.record, metrics=args.metrics)
        if sim is not None:
            from breakoutd.daemon.simmode import cover_new_symbols

            daemon.before_reload = lambda config: cover_new_symbols(sim, config)
        loop.add_signal_handler(signal.SIGHUP, daemon.request_reload, "SIGHUP")
        try:
            return await daemon.run(stop)
        except OperationalError as exc:
            if daemon.said is not exc:
                raise
            return 2  # the daemon said why in one line (console and ops journal)
    finally:
        if sim is not None:
            await sim.stop()


async def _start_sim(args: argparse.Namespace) -> SimGateway:
    """The embedded gateway, on a var cleared of the previous run (breakoutd.daemon.sim_var)."""
    from breakoutd.daemon.simmode import start_sim_run

    sim, where = await start_sim_run(args.watchlist_paths, args.var, os.environ, seed=args.sim_seed,
                                     speed=args.sim_speed)
    logger.info("{}", where)
    return sim


def _defaults_from_env(args: argparse.Namespace, env: dict[str, str]) -> None:
    """The paths breakoutctl uses too: the options, else the environment, else ./."""
    if args.var is None:
        args.var = Path(env.get("BREAKOUTD_VAR") or "var")
    from_env = [Path(p) for p in env.get("BREAKOUTD_WATCHLISTS", "").split(os.pathsep) if p]
    args.watchlist_paths = ([args.watchlists] if args.watchlists is not None
                            else from_env or [Path("watchlists")])


def run_daemon_cmd(args: argparse.Namespace) -> int:
    """Run until SIGTERM or SIGINT; exit 0 on a clean stop."""
    _defaults_from_env(args, dict(os.environ))
    try:
        return asyncio.run(_run(args))
    except ConfigError as exc:
        logger.remove()  # drain the console queue first
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 2
    except OperationalError as exc:
        logger.remove()
        print(f"breakoutd: {exc}", file=sys.stderr)
        return 2
    finally:
        logger.remove()  # waits until every queued line is written
