"""``breakoutctl``: the operator's command line.

``check [PATH...]`` validates watchlists and prints every problem as
``file:line: path: message``; ``plan [--var DIR] [PATH...]`` shows what a
reload would change against the last applied configuration. PATH defaults to
``$BREAKOUTD_WATCHLISTS`` (several joined by ``os.pathsep``) or ``watchlists``;
DIR defaults to ``$BREAKOUTD_VAR`` or ``var``. Exit 0 when fine, 1 on any
problem, 2 on a usage error. ``status`` and ``tail`` are in
:mod:`breakoutd.cli.ctl_status`, ``why WATCHER`` in :mod:`breakoutd.cli.ctl_why`;
the controls (``halt``, ``resume``, ``pause``, ``flatten``, ``cancel``,
``stop``) in :mod:`breakoutd.cli.ctl_control`; ``scan`` in :mod:`breakoutd.cli.ctl_scan`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from breakoutd import __version__
from breakoutd.cli.ctl_control import add_control_parsers
from breakoutd.cli.ctl_scan import add_scan_parser, print_scan_plan
from breakoutd.cli.ctl_status import add_status_parsers
from breakoutd.cli.ctl_why import add_why_parser
from breakoutd.config import (
    ConfigError,
    Problem,
    Watchlist,
    describe_risk,
    describe_watcher,
    field_changes,
    load_watchlists,
    plan_reload,
    read_snapshot,
    risk_changes,
    snapshot_path,
)
from breakoutd.core.params import RiskLimits

Command = Callable[[argparse.Namespace], int]


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _default_paths() -> list[str]:
    env = os.environ.get("BREAKOUTD_WATCHLISTS", "")
    return [p for p in env.split(os.pathsep) if p] or ["watchlists"]


def _report(problems: Sequence[Problem]) -> int:
    for problem in sorted(problems, key=Problem.sort_key):
        print(problem)
    print(f"{_plural(len(problems), 'problem')} found", file=sys.stderr)
    return 1


def _load(paths: Sequence[str]) -> Watchlist | ConfigError:
    try:
        return load_watchlists(paths or _default_paths())
    except ConfigError as exc:
        return exc


def cmd_check(args: argparse.Namespace) -> int:
    """Validate the watchlists: every problem, or one ``ok:`` line."""
    loaded = _load(args.paths)
    if isinstance(loaded, ConfigError):
        return _report(loaded.problems)
    disabled = sum(1 for w in loaded.watchers if not w.enabled)
    print(f"ok: {_plural(len(loaded.files), 'file')}, "
          f"{_plural(len(loaded.watchers), 'watcher')} ({disabled} disabled), "
          f"{_plural(len(loaded.presets), 'preset')}")
    print_scan_plan(loaded.scan)
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    """Show what applying the watchlists would change."""
    loaded = _load(args.paths)
    if isinstance(loaded, ConfigError):
        return _report(loaded.problems)
    path = snapshot_path(args.var or os.environ.get("BREAKOUTD_VAR") or "var")
    try:
        applied = read_snapshot(path)
    except ConfigError as exc:
        return _report(exc.problems)
    if applied is None:
        print(f"no applied configuration at {path}: every watcher is new")
    else:
        print(f"against the applied configuration at {path} ({applied.digest[:12]})")
    plan = plan_reload(applied, loaded)
    for spec in plan.added:
        print(f"+ {spec.id}: {describe_watcher(spec)}")
    for spec in plan.removed:
        print(f"- {spec.id}: {describe_watcher(spec)}")
    for old, new in plan.changed:
        print(f"~ {new.id}: {'; '.join(field_changes(old, new))}")
    _print_risk(applied, loaded)
    print_scan_plan(loaded.scan, args.var or os.environ.get("BREAKOUTD_VAR") or "var")
    print(("nothing to change: " if plan.is_empty() else "plan: ") + plan.summary())
    return 0


def _print_risk(applied: Watchlist | None, loaded: Watchlist) -> None:
    """The risk block: in full when new, else what changes (nothing when the same)."""
    if applied is None:
        if loaded.risk != RiskLimits():
            print(f"+ risk: {describe_risk(loaded.risk)}")
    elif changes := risk_changes(applied.risk, loaded.risk):
        print(f"~ risk: {'; '.join(changes)}")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; each subcommand sets ``run``."""
    parser = argparse.ArgumentParser(prog="breakoutctl", description="Operate breakoutd.")
    parser.add_argument("--version", action="version", version=f"breakoutctl {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    paths_help = "watchlist files or directories (default: $BREAKOUTD_WATCHLISTS or watchlists)"
    check = commands.add_parser("check", help="validate watchlists and report every problem")
    check.add_argument("paths", nargs="*", metavar="PATH", help=paths_help)
    check.set_defaults(run=cmd_check)
    plan = commands.add_parser("plan", help="show what a reload would add, remove and change")
    plan.add_argument("--var", metavar="DIR", help="runtime directory (default: $BREAKOUTD_VAR or var)")
    plan.add_argument("paths", nargs="*", metavar="PATH", help=paths_help)
    plan.set_defaults(run=cmd_plan)
    add_status_parsers(commands)
    add_control_parsers(commands)
    add_why_parser(commands)
    add_scan_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``breakoutctl`` with ``argv`` (default: the process arguments)."""
    args = build_parser().parse_args(argv)
    run: Command = args.run
    try:
        code = run(args)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (`breakoutctl status | head`): it had what it wanted.
        # stdout points at /dev/null so that the interpreter's own flush at exit is quiet.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    return code


if __name__ == "__main__":
    sys.exit(main())
