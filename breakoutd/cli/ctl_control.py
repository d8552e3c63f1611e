"""``breakoutctl halt|resume|pause|flatten|cancel|stop``: the operator's controls.

Each sends one request over the daemon's control socket (see
docs/operator.md) and prints the daemon's answer. Exit codes, stable for
scripts: 0 done, 1 the daemon refused (its reason is printed), 2 usage error,
3 the daemon is not running (no socket, nobody answers, or no answer in
time), 4 not allowed (no permission on the socket, or the daemon refused
this user).
"""

from __future__ import annotations

import argparse
import os
import pwd
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from breakoutd.cli.ctl_status import var_dir

# The daemon's control module is imported by the functions that send a request:
# it brings asyncio and the daemon's logging, which every breakoutctl start
# (check on a large watchlist among them) would otherwise pay for.
if TYPE_CHECKING:
    from breakoutd.daemon.control import ControlRequest, ControlResult

DONE, REFUSED, USAGE, NOT_RUNNING, NOT_ALLOWED_EXIT = 0, 1, 2, 3, 4
ANSWER_TIMEOUT = 30.0  # seconds; a flatten answers once its orders are sent, not filled


class ControlFailure(Exception):
    """The command did not reach the daemon, or got no answer: the exit code and why."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def socket_path(args: argparse.Namespace) -> Path:
    """``--socket``, else the daemon's rule: ``$RUNTIME_DIRECTORY`` or ``<var>/run``."""
    from breakoutd.daemon.control import control_socket_path

    if getattr(args, "socket", None):
        return Path(args.socket)
    return control_socket_path(var_dir(args.var), os.environ)


def _who_may(path: Path) -> str:
    """Who may use the socket: the owner of its directory (the daemon's user) and root."""
    try:
        uid = path.parent.stat().st_uid
    except OSError:
        return "the daemon's user or root"
    if uid == 0:
        return "root"
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        name = f"uid {uid}"
    return f"{name} (the daemon's user) or root"


def _connect(path: Path, timeout: float) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(str(path))
    except FileNotFoundError as exc:
        sock.close()
        raise ControlFailure(NOT_RUNNING, f"breakoutd is NOT RUNNING: no control socket at "
                                          f"{path}") from exc
    except PermissionError as exc:
        sock.close()
        raise ControlFailure(NOT_ALLOWED_EXIT, f"permission denied on {path}: run breakoutctl "
                                               f"as {_who_may(path)}") from exc
    except (ConnectionRefusedError, TimeoutError) as exc:
        sock.close()
        raise ControlFailure(NOT_RUNNING, f"breakoutd is NOT RUNNING: nothing answers on "
                                          f"{path}") from exc
    return sock


def _read_line(sock: socket.socket) -> bytes:
    from breakoutd.daemon.control import MAX_REQUEST

    data = b""
    while not data.endswith(b"\n") and len(data) <= MAX_REQUEST * 16:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def send(path: Path, request: ControlRequest, timeout: float = ANSWER_TIMEOUT) -> ControlResult:
    """Send one request and return the daemon's answer (ControlFailure when there is none)."""
    from breakoutd.daemon.control import decode_result, encode_line

    sock = _connect(path, timeout)
    try:
        try:
            sock.sendall(encode_line(request))
        except BrokenPipeError:
            pass  # it answered and hung up first (a refusal): the answer is still to read
        line = _read_line(sock)
    except TimeoutError as exc:
        raise ControlFailure(NOT_RUNNING, f"no answer from breakoutd within {timeout:g}s: it may "
                                          "be hung, and the command may or may not have been "
                                          "done; see breakoutctl status") from exc
    except OSError as exc:
        raise ControlFailure(NOT_RUNNING, f"the connection to breakoutd broke: {exc}") from exc
    finally:
        sock.close()
    try:
        return decode_result(line)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ControlFailure(REFUSED, f"breakoutd gave no readable answer ({exc}); "
                                      "see breakoutctl tail") from exc


def exit_code(result: ControlResult) -> int:
    """The exit code for the daemon's answer."""
    from breakoutd.daemon.control import NOT_ALLOWED

    if result.ok:
        return DONE
    return NOT_ALLOWED_EXIT if result.code == NOT_ALLOWED else REFUSED


def run_control(args: argparse.Namespace, request: ControlRequest) -> int:
    """Send ``request``, print the answer, and return the exit code."""
    try:
        result = send(socket_path(args), request, ANSWER_TIMEOUT)
    except ControlFailure as failure:
        print(failure, file=sys.stderr)
        return failure.code
    if result.ok:
        print(result.message)
    else:
        print(f"breakoutd refused ({result.code}): {result.message}", file=sys.stderr)
    return exit_code(result)


def _request(args: argparse.Namespace) -> ControlRequest:
    """The request a parsed command line asks for."""
    from breakoutd.daemon.control import ControlRequest

    command = args.command
    if command == "halt":
        return ControlRequest(command="halt", flatten=args.flatten)
    if command == "flatten":
        return ControlRequest(command="flatten", target=args.target, all=args.all)
    if command in ("cancel", "stop"):
        return ControlRequest(command=command, target=args.watcher)
    return ControlRequest(command=command)


def cmd_control(args: argparse.Namespace) -> int:
    """Run one control command."""
    return run_control(args, _request(args))


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--var", metavar="DIR",
                        help="runtime directory (default: $BREAKOUTD_VAR or var); the socket is "
                             "$RUNTIME_DIRECTORY/control.sock when that is set, else DIR/run/")
    parser.add_argument("--socket", metavar="PATH", help="the control socket itself")
    parser.set_defaults(run=cmd_control)


def add_control_parsers(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``halt``, ``resume``, ``pause``, ``flatten``, ``cancel`` and ``stop``."""
    halt = commands.add_parser("halt", help="kill switch: no new entries until resume")
    halt.add_argument("--flatten", action="store_true",
                      help="also cancel every exit and sell every open position")
    _common(halt)
    _common(commands.add_parser("resume", help="lift a halt or a pause"))
    _common(commands.add_parser("pause", help="keep watching, send no new entries until resume"))
    flatten = commands.add_parser("flatten", help="cancel the exits and sell what is open")
    which = flatten.add_mutually_exclusive_group(required=True)
    which.add_argument("target", nargs="?", metavar="WATCHER|SYMBOL",
                       help="a watcher id, or a symbol (every watcher on it)")
    which.add_argument("--all", action="store_true", help="every open position")
    _common(flatten)
    cancel = commands.add_parser("cancel", help="cancel a watcher's unfilled entry")
    cancel.add_argument("watcher", metavar="WATCHER")
    _common(cancel)
    stop = commands.add_parser("stop", help="disarm a watcher for today (outcome stopped)")
    stop.add_argument("watcher", metavar="WATCHER")
    _common(stop)
