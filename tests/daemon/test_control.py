"""The control socket: private to the daemon's user, one journalled answer per command, robust."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import stat
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from breakoutd.core import events as ev
from breakoutd.daemon.console import describe
from breakoutd.daemon.control import (
    MAX_REQUEST,
    NOT_ALLOWED,
    ControlServer,
    control_socket_path,
    peer_refusal,
)
from breakoutd.errors import OperationalError
from tests.daemon.controlkit import CLOCK_NS, FakeActions

ME = os.geteuid()


def run(body: Callable[[ControlServer, FakeActions, list[ev.Event]], Awaitable[None]],
        path: Path, **kwargs: Any) -> None:
    """Run ``body`` against a started server on ``path`` with a fresh fake."""
    actions, events = FakeActions(), []

    async def main() -> None:
        async with ControlServer(path, actions, events.append, lambda: CLOCK_NS,
                                 **kwargs) as server:
            await body(server, actions, events)

    asyncio.run(main())


async def exchange(path: Path, payload: bytes) -> dict[str, Any]:
    """Send raw bytes, return the decoded answer line."""
    reader, writer = await asyncio.open_unix_connection(str(path))
    writer.write(payload)
    await writer.drain()
    line = await reader.readline()
    writer.close()
    assert line.endswith(b"\n"), line
    answer: dict[str, Any] = json.loads(line)
    return answer


async def ask(path: Path, **request: Any) -> dict[str, Any]:
    return await exchange(path, json.dumps(request).encode() + b"\n")


def test_the_socket_path_follows_systemd_then_var(tmp_path: Path) -> None:
    assert control_socket_path(tmp_path, {}) == tmp_path / "run" / "control.sock"
    assert (control_socket_path(tmp_path, {"RUNTIME_DIRECTORY": "/run/breakoutd"})
            == Path("/run/breakoutd/control.sock"))
    assert (control_socket_path(tmp_path, {"RUNTIME_DIRECTORY": "/run/a:/run/b"})
            == Path("/run/a/control.sock"))


@pytest.mark.parametrize(("request_", "call", "code"), [
    ({"command": "halt"}, ("halt", False, ME), "halted"),
    ({"command": "halt", "flatten": True}, ("halt", True, ME), "halted"),
    ({"command": "pause"}, ("pause", ME), "paused"),
    ({"command": "flatten", "target": "AAPL"}, ("flatten", "AAPL", False, ME), "flattening"),
    ({"command": "flatten", "all": True}, ("flatten", None, True, ME), "flattening"),
    ({"command": "cancel", "target": "MSFT@420"}, ("cancel", "MSFT@420", ME), "cancelled"),
    ({"command": "stop", "target": "MSFT@420"}, ("stop", "MSFT@420", ME), "stopped"),
])
def test_each_command_reaches_its_action_and_is_journalled_with_the_uid(
        tmp_path: Path, request_: dict[str, Any], call: tuple[Any, ...], code: str) -> None:
    async def body(server: ControlServer, actions: FakeActions, events: list[ev.Event]) -> None:
        answer = await ask(server.path, **request_)
        assert answer["ok"] is True and answer["code"] == code, answer
        assert actions.calls == [call]
        [event] = events
        assert isinstance(event, ev.OperatorCommand)
        assert (event.at, event.command, event.uid, event.ok, event.code) == (
            CLOCK_NS, request_["command"], ME, True, code)
        assert event.message == answer["message"]
        assert event.target == ("all" if request_.get("all") else request_.get("target", ""))
        assert event.flatten is bool(request_.get("flatten"))

    run(body, tmp_path / "run" / "control.sock")


def test_a_refusal_of_the_daemon_is_answered_and_journalled(tmp_path: Path) -> None:
    async def body(server: ControlServer, actions: FakeActions, events: list[ev.Event]) -> None:
        assert (await ask(server.path, command="halt"))["ok"] is True
        again = await ask(server.path, command="halt")
        assert again == {"ok": False, "code": "already_halted",
                         "message": "breakoutd is already halted"}
        assert [(e.ok, e.code) for e in events if isinstance(e, ev.OperatorCommand)] == [
            (True, "halted"), (False, "already_halted")]

    run(body, tmp_path / "control.sock")


def test_an_action_that_raises_is_a_refusal_and_the_server_goes_on(tmp_path: Path) -> None:
    async def body(server: ControlServer, actions: FakeActions, events: list[ev.Event]) -> None:
        actions.fail_with = RuntimeError("the broker is gone")
        answer = await ask(server.path, command="pause")
        assert (answer["ok"], answer["code"]) == (False, "failed")
        assert "the broker is gone" in answer["message"]
        actions.fail_with = None
        assert (await ask(server.path, command="pause"))["ok"] is True

    run(body, tmp_path / "control.sock")


@pytest.mark.parametrize("request_", [
    {"command": "flatten"},
    {"command": "flatten", "target": "AAPL", "all": True},
    {"command": "cancel"},
    {"command": "pause", "target": "AAPL"},
    {"command": "resume", "flatten": True},
    {"command": "reboot"},
    {"command": "halt", "sudo": True},
])
def test_a_request_that_does_not_fit_reaches_no_action(tmp_path: Path,
                                                       request_: dict[str, Any]) -> None:
    async def body(server: ControlServer, actions: FakeActions, events: list[ev.Event]) -> None:
        answer = await ask(server.path, **request_)
        assert (answer["ok"], answer["code"]) == (False, "bad_request"), answer
        assert actions.calls == [] and events == []

    run(body, tmp_path / "control.sock")


def test_the_socket_is_0600_in_a_0700_directory_and_gone_after_close(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    folder.mkdir(mode=0o755)  # left wide by someone: the daemon narrows it
    path = folder / "control.sock"

    async def body(server: ControlServer, actions: FakeActions, events: list[ev.Event]) -> None:
        assert stat.S_ISSOCK(path.lstat().st_mode)
        assert stat.S_IMODE(path.lstat().st_mode) == 0o600
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700

    run(body, path)
    assert not path.exists()


def test_a_stale_socket_from_a_crash_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "control.sock"
    crashed = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    crashed.bind(str(path))  # bound, never listening, then gone: what a killed daemon leaves
    crashed.close()
    assert path.exists()

    async def body(server: ControlServer, actions: FakeActions, events: list[ev.Event]) -> None:
        assert (await ask(path, command="pause"))["ok"] is True

    run(body, path)


def test_a_second_daemon_refuses_to_start_on_a_live_socket(tmp_path: Path) -> None:
    async def body(server: ControlServer, actions: FakeActions, events: list[ev.Event]) -> None:
        other = ControlServer(server.path, FakeActions(), events.append, lambda: CLOCK_NS)
        with pytest.raises(OperationalError, match="another breakoutd answers"):
            await other.start()
        assert (await ask(server.path, command="pause"))["ok"] is True  # the first one still is

    run(body, tmp_path / "control.sock")


def test_a_file_that_is_not_a_socket_is_not_removed(tmp_path: Path) -> None:
    path = tmp_path / "control.sock"
    path.write_text("the operator's notes")
    server = ControlServer(path, FakeActions(), lambda e: None, lambda: CLOCK_NS)
    with pytest.raises(OperationalError, match="not a socket"):
        asyncio.run(server.start())
    assert path.read_text() == "the operator's notes"


def test_garbage_an_oversized_line_and_a_silent_client_leave_the_next_client_served(
        tmp_path: Path) -> None:
    async def body(server: ControlServer, actions: FakeActions, events: list[ev.Event]) -> None:
        silent_reader, silent = await asyncio.open_unix_connection(str(server.path))
        # While the silent one holds its connection, others are answered.
        garbage = await exchange(server.path, b"\x00\xffnot json at all\n")
        assert (garbage["ok"], garbage["code"]) == (False, "bad_request")
        not_object = await exchange(server.path, b"[1, 2, 3]\n")
        assert not_object["code"] == "bad_request"
        huge = await exchange(server.path, b"{" + b" " * (MAX_REQUEST * 4))
        assert (huge["ok"], huge["code"]) == (False, "too_large")
        assert (await ask(server.path, command="pause"))["ok"] is True
        # The silent client is dropped with a reason once its time is up.
        line = await asyncio.wait_for(silent_reader.readline(), 10)
        assert json.loads(line)["code"] == "timeout"
        assert await silent_reader.read() == b""
        silent.close()
        assert (await ask(server.path, command="resume"))["ok"] is True
        assert [e.command for e in events if isinstance(e, ev.OperatorCommand)] == [
            "pause", "resume"]

    run(body, tmp_path / "control.sock", read_timeout=0.3)


def test_a_client_that_hangs_up_midway_does_not_stop_the_server(tmp_path: Path) -> None:
    async def body(server: ControlServer, actions: FakeActions, events: list[ev.Event]) -> None:
        _, writer = await asyncio.open_unix_connection(str(server.path))
        writer.write(b'{"command": "pa')
        await writer.drain()
        writer.close()
        assert (await ask(server.path, command="pause"))["ok"] is True

    run(body, tmp_path / "control.sock")


def test_several_clients_at_once_are_each_answered(tmp_path: Path) -> None:
    async def body(server: ControlServer, actions: FakeActions, events: list[ev.Event]) -> None:
        answers = await asyncio.gather(*(ask(server.path, command="stop", target="AAPL@190")
                                         for _ in range(8)))
        assert all(a["ok"] for a in answers) and len(actions.calls) == 8

    run(body, tmp_path / "control.sock")


def test_only_the_daemons_own_user_and_root_are_allowed() -> None:
    allowed = {1001, 0}
    assert peer_refusal(1001, allowed) is None
    assert peer_refusal(0, allowed) is None
    refusal = peer_refusal(65534, allowed)
    assert refusal is not None and (refusal.ok, refusal.code) == (False, NOT_ALLOWED)
    assert "uid 65534 may not operate breakoutd" in refusal.message


def test_a_peer_of_another_uid_is_refused_before_any_action(tmp_path: Path) -> None:
    """The kernel's SO_PEERCRED is what the server checks: here our own uid is not allowed."""
    async def body(server: ControlServer, actions: FakeActions, events: list[ev.Event]) -> None:
        answer = await ask(server.path, command="halt", flatten=True)
        assert (answer["ok"], answer["code"]) == (False, NOT_ALLOWED)
        assert f"uid {ME} may not operate" in answer["message"]
        assert actions.calls == [] and not actions.halted
        [event] = events
        assert isinstance(event, ev.OperatorCommand)
        # Journalled with what it asked for, and who asked.
        assert (event.command, event.flatten, event.uid, event.ok, event.code) == (
            "halt", True, ME, False, NOT_ALLOWED)

    run(body, tmp_path / "control.sock", allowed_uids={ME + 4242})


def test_the_console_and_tail_show_who_asked_what_and_the_answer() -> None:
    done = ev.OperatorCommand(at=CLOCK_NS, command="halt", target="", flatten=True, uid=1001,
                              ok=True, code="halted", message="halted: no new entries")
    assert describe(done) == "operator (uid 1001): halt --flatten -> done: halted: no new entries"
    no = ev.OperatorCommand(at=CLOCK_NS, command="flatten", target="TSLA", flatten=False, uid=0,
                            ok=False, code="nothing_open", message="no open position for TSLA")
    assert describe(no) == "operator (uid 0): flatten TSLA -> REFUSED: no open position for TSLA"
