"""``breakoutd``: the daemon, the simulated gateway and the backtest."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from breakoutd import __version__
from breakoutd.cli.backtest_cmd import add_backtest_parser
from breakoutd.cli.record_cmd import add_record_parser
from breakoutd.cli.report_cmd import add_report_parser
from breakoutd.cli.run_cmd import add_run_parser
from breakoutd.cli.sim_cmd import add_sim_parser


def build_parser() -> argparse.ArgumentParser:
    """The ``breakoutd`` command line."""
    parser = argparse.ArgumentParser(
        prog="breakoutd",
        description="Trade price breakouts on Interactive Brokers: the daemon (run), the "
                    "simulated IB Gateway (sim), the backtest (backtest), the performance report "
                    "(report) and the tape recorder (record).")
    parser.add_argument("--version", action="version", version=f"breakoutd {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_run_parser(sub)
    add_backtest_parser(sub)
    add_sim_parser(sub)
    add_report_parser(sub)
    add_record_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and run the command; the exit code is returned."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
