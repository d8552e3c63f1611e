"""The operator's controls: a Unix domain socket that only the daemon's user and root may use.

``breakoutctl halt|resume|pause|flatten|cancel|stop`` sends one JSON object
on one line; the daemon answers with one line, ``{"ok", "code", "message"}``
(plus ``data`` when there is any), and closes. The socket is never a network
port: it lives in ``$RUNTIME_DIRECTORY`` (systemd's ``RuntimeDirectory=``) or
``<var>/run``, in a directory of mode 0700, and is itself of mode 0600; the
peer's uid is read from the kernel (``SO_PEERCRED``) and anyone but the
daemon's own user and root is refused. Every command is journalled as an
:class:`~breakoutd.core.events.OperatorCommand` with that uid.

A client cannot hurt the daemon: requests are bounded in size, one that says
nothing is dropped after a timeout, garbage gets an error, and commands run
one at a time in the order they arrived.
"""

from __future__ import annotations

import asyncio
import os
import socket
import stat
import struct
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Protocol

import msgspec
from loguru import logger

from breakoutd.core import events as ev
from breakoutd.errors import OperationalError

SOCKET_NAME = "control.sock"
MAX_REQUEST = 4096  # bytes of one request line; a real one is well under 200
READ_TIMEOUT = 5.0  # seconds a client has to send its request
Command = Literal["halt", "resume", "pause", "flatten", "cancel", "stop"]
COMMANDS: tuple[str, ...] = ("halt", "resume", "pause", "flatten", "cancel", "stop")
NOT_ALLOWED = "not_allowed"  # the one code a client maps to "permission denied"


def control_socket_path(var: Path, env: Mapping[str, str]) -> Path:
    """Where the control socket is: ``$RUNTIME_DIRECTORY/control.sock``, else ``<var>/run/``."""
    runtime = env.get("RUNTIME_DIRECTORY", "")
    # systemd joins several RuntimeDirectory= entries with ':'; ours is the first.
    first = runtime.split(":")[0]
    return (Path(first) if first else Path(var) / "run") / SOCKET_NAME


class ControlRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One operator command: ``target`` is the watcher or symbol, ``all`` flattens everything."""

    command: Command
    target: str | None = None
    flatten: bool = False
    all: bool = False


class ControlResult(msgspec.Struct, frozen=True, omit_defaults=True):
    """The daemon's answer: done or refused, a stable ``code`` and a sentence for a person."""

    ok: bool
    code: str
    message: str
    data: dict[str, Any] | None = None


class OperatorActions(Protocol):
    """What the daemon does for each command; ``uid`` is who asked (already allowed)."""

    async def halt(self, flatten: bool, uid: int) -> ControlResult:
        """Stop opening positions (kill switch); with ``flatten``, also flatten everything."""

    async def resume(self, uid: int) -> ControlResult:
        """Lift a halt or a pause: watchers may enter again."""

    async def pause(self, uid: int) -> ControlResult:
        """Keep watching but send no new entry until ``resume``."""

    async def flatten(self, target: str | None, all: bool, uid: int) -> ControlResult:
        """Cancel the exits of a watcher's or a symbol's position (or all) and sell it."""

    async def cancel(self, watcher_id: str, uid: int) -> ControlResult:
        """Cancel a watcher's unfilled entry."""

    async def stop(self, watcher_id: str, uid: int) -> ControlResult:
        """Disarm a watcher for today (outcome ``stopped``)."""


def refused(code: str, message: str) -> ControlResult:
    """A refusal with its reason."""
    return ControlResult(ok=False, code=code, message=message)


_encoder = msgspec.json.Encoder()
_request_decoder = msgspec.json.Decoder(ControlRequest)
_result_decoder = msgspec.json.Decoder(ControlResult)


def encode_line(value: ControlRequest | ControlResult) -> bytes:
    """One protocol line."""
    return _encoder.encode(value) + b"\n"


def decode_result(line: bytes) -> ControlResult:
    """The daemon's answer line (raises msgspec errors on anything else)."""
    return _result_decoder.decode(line)


def decode_request(line: bytes) -> ControlRequest | ControlResult:
    """A request, or the refusal to send back for a malformed one."""
    try:
        request = _request_decoder.decode(line)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        return refused("bad_request", f"not a control request: {exc}")
    problem = _request_problem(request)
    return refused("bad_request", problem) if problem else request


def _request_problem(r: ControlRequest) -> str | None:
    """What is wrong with a well-formed request's arguments (None when they fit)."""
    if r.command == "flatten":
        if (r.target is None) == (not r.all):
            return "flatten needs exactly one of a watcher, a symbol or all"
    elif r.command in ("cancel", "stop"):
        if not r.target or r.all:
            return f"{r.command} needs a watcher id"
    elif r.target is not None or r.all:
        return f"{r.command} takes no target"
    if r.flatten and r.command != "halt":
        return "only halt takes flatten"
    return None


def peer_uid(sock: Any) -> int:
    """The uid of the process at the other end of a Unix socket, from the kernel."""
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return int(uid)


def peer_refusal(uid: int, allowed: Collection[int]) -> ControlResult | None:
    """The refusal for a peer whose uid may not operate the daemon, or None when it may."""
    if uid in allowed:
        return None
    return refused(NOT_ALLOWED, f"uid {uid} may not operate breakoutd: only the daemon's own "
                                "user and root may")


async def dispatch(actions: OperatorActions, r: ControlRequest, uid: int) -> ControlResult:
    """Run one valid request's action."""
    if r.command == "halt":
        return await actions.halt(r.flatten, uid)
    if r.command == "resume":
        return await actions.resume(uid)
    if r.command == "pause":
        return await actions.pause(uid)
    if r.command == "flatten":
        return await actions.flatten(r.target, r.all, uid)
    if r.command == "cancel":
        return await actions.cancel(r.target or "", uid)
    return await actions.stop(r.target or "", uid)


def _check_directory(folder: Path) -> None:
    """Create the socket's directory, private to the daemon's user."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    if stat.S_IMODE(folder.stat().st_mode) != 0o700:
        folder.chmod(0o700)


def _clear_stale(path: Path) -> None:
    """Remove a socket left by a crash; refuse when a live daemon answers on it."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise OperationalError(f"{path} exists and is not a socket: remove it or set "
                               "RUNTIME_DIRECTORY elsewhere")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(str(path))
    except (ConnectionRefusedError, FileNotFoundError):
        path.unlink(missing_ok=True)  # nobody listens: a crash left it
        return
    except OSError as exc:
        raise OperationalError(f"cannot tell whether {path} is in use: {exc}") from exc
    finally:
        probe.close()
    raise OperationalError(f"another breakoutd answers on {path}: two daemons must not share "
                           "a runtime directory")


def bind_private(path: Path) -> socket.socket:
    """A listening Unix socket at ``path``, mode 0600 from its first instant."""
    _check_directory(path.parent)
    _clear_stale(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    # The umask makes the socket private as it is created, so there is no instant
    # when another user could connect; it is process-wide, so restore it at once.
    old = os.umask(0o177)
    try:
        sock.bind(str(path))
    except OSError:
        sock.close()
        raise
    finally:
        os.umask(old)
    path.chmod(0o600)
    sock.listen(16)
    sock.setblocking(False)
    return sock


class ControlServer:
    """The control socket's server: ``async with ControlServer(...)`` or start() / close()."""

    def __init__(self, path: Path, actions: OperatorActions, emit: Callable[[ev.Event], None],
                 clock: Callable[[], int], *, allowed_uids: Collection[int] | None = None,
                 read_timeout: float = READ_TIMEOUT) -> None:
        """``emit`` journals each command's event; ``clock`` stamps it (ns)."""
        self.path = path
        self._actions = actions
        self._emit = emit
        self._clock = clock
        self._allowed = frozenset(allowed_uids if allowed_uids is not None
                                  else {os.geteuid(), 0})
        self._read_timeout = read_timeout
        self._server: asyncio.Server | None = None
        self._lock = asyncio.Lock()  # one command at a time, in arrival order
        self._clients: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Bind the socket and start answering."""
        sock = bind_private(self.path)
        self._server = await asyncio.start_unix_server(self._client, sock=sock,
                                                       limit=MAX_REQUEST)

    async def close(self) -> None:
        """Stop answering, drop the clients still connected, remove the socket file.

        A command still running is cancelled with its client: close this when the
        daemon is stopping, after which no command can be done anyway.
        """
        if self._server is None:
            return
        self._server.close()
        for task in list(self._clients):
            task.cancel()
        await asyncio.gather(*self._clients, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None
        self.path.unlink(missing_ok=True)

    async def __aenter__(self) -> ControlServer:
        await self.start()
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._clients.add(task)
        try:
            answer = await self._answer(reader, writer.get_extra_info("socket"))
            if answer is not None:
                writer.write(encode_line(answer))
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass  # the client went away, or the daemon is closing
        finally:
            writer.close()
            if task is not None:
                self._clients.discard(task)

    async def _answer(self, reader: asyncio.StreamReader, sock: Any) -> ControlResult | None:
        """The answer to one connection's request (None when there is nobody to answer)."""
        uid = peer_uid(sock)
        # Read first, even from a peer to refuse: closing on a request not yet read
        # would lose the refusal on the way (the client would see a reset, not why).
        line = await self._read_line(reader)
        refusal = peer_refusal(uid, self._allowed)
        if refusal is not None:
            asked = decode_request(line) if isinstance(line, bytes) else None
            logger.warning("control: refused uid {}", uid)
            self._journal(asked if isinstance(asked, ControlRequest) else None, uid, refusal)
            return refusal
        if isinstance(line, ControlResult) or line is None:
            return line
        request = decode_request(line)
        if isinstance(request, ControlResult):
            return request
        async with self._lock:
            result = await self._run(request, uid)
            self._journal(request, uid, result)
        return result

    async def _read_line(self, reader: asyncio.StreamReader) -> bytes | ControlResult | None:
        """The request line, a refusal for one too long or too slow, or None on EOF."""
        try:
            line = await asyncio.wait_for(reader.readline(), self._read_timeout)
        except TimeoutError:
            return refused("timeout", f"no request within {self._read_timeout:g}s")
        except ValueError:  # the stream's limit: more than MAX_REQUEST without a newline
            return refused("too_large", f"a request is at most {MAX_REQUEST} bytes")
        return line if line.endswith(b"\n") else None

    async def _run(self, request: ControlRequest, uid: int) -> ControlResult:
        try:
            return await dispatch(self._actions, request, uid)
        except Exception as exc:  # the daemon stays up; the operator learns what failed
            logger.exception("control: {} failed", request.command)
            return refused("failed", f"{request.command} failed inside the daemon: {exc}")

    def _journal(self, request: ControlRequest | None, uid: int, result: ControlResult) -> None:
        """One OperatorCommand; ``connect`` for a refused peer whose request was unreadable."""
        target = "" if request is None else ("all" if request.all else request.target or "")
        self._emit(ev.OperatorCommand(
            at=self._clock(), command="connect" if request is None else request.command,
            target=target, flatten=request is not None and request.flatten, uid=uid,
            ok=result.ok, code=result.code, message=result.message))
