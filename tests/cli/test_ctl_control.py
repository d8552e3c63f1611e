"""``breakoutctl halt|resume|pause|flatten|cancel|stop``: the daemon's answer and a stable exit code."""

from __future__ import annotations

import io
import os
import pwd
import shutil
import socket
import sys
import tempfile
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from breakoutd.cli import ctl_control
from breakoutd.cli.ctl import main
from breakoutd.core import events as ev
from tests.daemon.controlkit import ServerThread

ME = os.geteuid()


def sock_of(var: Path) -> Path:
    return var / "run" / "control.sock"


@pytest.fixture
def var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A var directory, and no systemd runtime directory to take precedence over it."""
    monkeypatch.delenv("RUNTIME_DIRECTORY", raising=False)
    monkeypatch.delenv("BREAKOUTD_VAR", raising=False)
    return tmp_path / "var"


@pytest.fixture
def daemon(var: Path) -> Iterator[ServerThread]:
    with ServerThread(sock_of(var)) as server:
        yield server


@pytest.mark.parametrize(("argv", "call", "printed"), [
    (["halt"], ("halt", False, ME), "halted: no new entries"),
    (["halt", "--flatten"], ("halt", True, ME), "halted: no new entries, flattening 1 position"),
    (["pause"], ("pause", ME), "paused: watching, no new entries"),
    (["flatten", "AAPL@190"], ("flatten", "AAPL@190", False, ME),
     "flattening AAPL@190: exits cancelled, SELL MKT sent"),
    (["flatten", "AAPL"], ("flatten", "AAPL", False, ME),
     "flattening AAPL@190: exits cancelled, SELL MKT sent"),
    (["flatten", "--all"], ("flatten", None, True, ME),
     "flattening AAPL@190: exits cancelled, SELL MKT sent"),
    (["cancel", "MSFT@420"], ("cancel", "MSFT@420", ME), "MSFT@420: unfilled entry cancelled"),
    (["stop", "MSFT@420"], ("stop", "MSFT@420", ME), "MSFT@420: disarmed for today"),
])
def test_each_command_prints_the_daemons_answer_and_exits_0(
        daemon: ServerThread, var: Path, capsys: pytest.CaptureFixture[str],
        argv: list[str], call: tuple[Any, ...], printed: str) -> None:
    assert main([*argv, "--var", str(var)]) == 0
    assert capsys.readouterr().out == printed + "\n"
    assert daemon.actions.calls == [call]
    [event] = daemon.events
    assert isinstance(event, ev.OperatorCommand)
    assert (event.command, event.uid, event.ok, event.message) == (argv[0], ME, True, printed)


def test_resume_after_halt_and_a_refusal_with_its_reason(
        daemon: ServerThread, var: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["resume", "--var", str(var)]) == 1
    assert capsys.readouterr().err == (
        "breakoutd refused (not_halted): breakoutd is neither halted nor paused\n")
    assert main(["halt", "--var", str(var)]) == 0
    assert main(["halt", "--var", str(var)]) == 1
    assert "already halted" in capsys.readouterr().err
    assert main(["resume", "--var", str(var)]) == 0
    assert capsys.readouterr().out.endswith("resumed: watchers may enter again\n")
    assert main(["flatten", "TSLA", "--var", str(var)]) == 1
    assert "no open position for TSLA" in capsys.readouterr().err
    assert [(e.command, e.ok) for e in daemon.events if isinstance(e, ev.OperatorCommand)] == [
        ("resume", False), ("halt", True), ("halt", False), ("resume", True), ("flatten", False)]


@pytest.mark.parametrize("argv", [["flatten"], ["flatten", "AAPL", "--all"], ["cancel"],
                                  ["stop"], ["halt", "AAPL"], ["pause", "--flatten"]])
def test_a_usage_error_exits_2_and_sends_nothing(daemon: ServerThread, var: Path,
                                                 argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*argv, "--var", str(var)])
    assert exited.value.code == 2
    assert daemon.actions.calls == []


def test_no_daemon_exits_3(var: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["halt", "--var", str(var)]) == 3
    assert capsys.readouterr().err == (
        f"breakoutd is NOT RUNNING: no control socket at {sock_of(var)}\n")


def test_a_socket_left_by_a_crash_exits_3(var: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sock_of(var).parent.mkdir(parents=True)
    left = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    left.bind(str(sock_of(var)))
    left.close()
    assert main(["pause", "--var", str(var)]) == 3
    assert "nothing answers on" in capsys.readouterr().err


def test_a_daemon_that_never_answers_exits_3_saying_so(
        var: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ctl_control, "ANSWER_TIMEOUT", 0.2)
    sock_of(var).parent.mkdir(parents=True)
    hung = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    hung.bind(str(sock_of(var)))
    hung.listen(1)  # the kernel accepts the connection; nobody reads it
    try:
        assert main(["halt", "--var", str(var)]) == 3
    finally:
        hung.close()
    assert "no answer from breakoutd within 0.2s" in capsys.readouterr().err


def test_the_socket_is_found_by_runtime_directory_then_breakoutd_var(
        tmp_path: Path, var: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runtime = tmp_path / "runtime"
    with ServerThread(runtime / "control.sock") as server:
        monkeypatch.setenv("RUNTIME_DIRECTORY", str(runtime))
        assert main(["pause", "--var", str(var)]) == 0  # systemd's directory wins
        monkeypatch.delenv("RUNTIME_DIRECTORY")
        assert main(["pause", "--socket", str(runtime / "control.sock")]) == 0
    assert len(server.actions.calls) == 2
    with ServerThread(sock_of(var)) as server:
        monkeypatch.setenv("BREAKOUTD_VAR", str(var))
        assert main(["pause"]) == 0
    assert server.actions.calls == [("pause", ME)]


def test_a_user_the_daemon_does_not_allow_exits_4(var: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    with ServerThread(sock_of(var), allowed_uids={ME + 4242}) as server:
        assert main(["halt", "--flatten", "--var", str(var)]) == 4
    assert capsys.readouterr().err == (
        f"breakoutd refused (not_allowed): uid {ME} may not operate breakoutd: only the "
        "daemon's own user and root may\n")
    assert server.actions.calls == []


# --- a second user, for real: root drops to nobody in a forked child ------------------------


def as_user(uid: int, gid: int, argv: list[str]) -> tuple[int, str]:
    """Run ``breakoutctl argv`` as another user (a forked child): its exit code and output.

    A fork, not a new interpreter: the test's Python may not be readable by that user.
    """
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 99
        try:
            os.close(read_end)
            os.dup2(write_end, 1)
            os.dup2(write_end, 2)
            sys.stdout = sys.stderr = io.TextIOWrapper(io.FileIO(1, "w", closefd=False))
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            code = main(argv)
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        out = pipe.read().decode()
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), out


@pytest.fixture
def shared_var(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A var directory another user could reach, were it not for the socket's own modes."""
    if os.geteuid() != 0:
        pytest.skip("needs root to act as a second user")
    monkeypatch.delenv("RUNTIME_DIRECTORY", raising=False)
    top = Path(tempfile.mkdtemp(prefix="breakoutd-control-", dir="/tmp"))
    top.chmod(0o755)
    try:
        yield top
    finally:
        shutil.rmtree(top)


def nobody() -> tuple[int, int]:
    entry = pwd.getpwnam("nobody")
    return entry.pw_uid, entry.pw_gid


def test_a_second_user_without_access_to_the_socket_is_refused(shared_var: Path) -> None:
    uid, gid = nobody()
    path = sock_of(shared_var)
    with ServerThread(path) as server:
        # As deployed: the socket's directory is 0700, the daemon's user's alone.
        code, out = as_user(uid, gid, ["halt", "--flatten", "--var", str(shared_var)])
        assert (code, out) == (4, f"permission denied on {path}: run breakoutctl as root\n")
        # Even with the directory opened up, the socket itself (0600) keeps them out.
        path.parent.chmod(0o711)
        code, out = as_user(uid, gid, ["stop", "AAPL@190", "--var", str(shared_var)])
        assert code == 4 and out.startswith(f"permission denied on {path}"), out
        # As root it works; nothing the other user sent reached an action.
        assert main(["pause", "--var", str(shared_var)]) == 0
    assert server.actions.calls == [("pause", 0)]


def test_a_second_user_past_the_file_modes_is_refused_by_the_daemon(shared_var: Path) -> None:
    """SO_PEERCRED is the last line: a socket someone made world-writable still refuses."""
    uid, gid = nobody()
    path = sock_of(shared_var)
    with ServerThread(path) as server:
        path.parent.chmod(0o711)
        path.chmod(0o666)
        code, out = as_user(uid, gid, ["halt", "--var", str(shared_var)])
    assert code == 4
    assert out == (f"breakoutd refused (not_allowed): uid {uid} may not operate breakoutd: "
                   "only the daemon's own user and root may\n")
    assert server.actions.calls == []
    [event] = server.events
    assert isinstance(event, ev.OperatorCommand)
    assert (event.command, event.uid, event.ok) == ("halt", uid, False)


def test_the_permission_message_names_the_daemons_user(shared_var: Path) -> None:
    uid, gid = nobody()
    daemon_user = pwd.getpwnam("daemon")  # any other account stands for breakoutd's user
    path = sock_of(shared_var)
    with ServerThread(path):
        os.chown(path.parent, daemon_user.pw_uid, daemon_user.pw_gid)
        code, out = as_user(uid, gid, ["resume", "--var", str(shared_var)])
    assert (code, out) == (4, f"permission denied on {path}: run breakoutctl as daemon "
                              "(the daemon's user) or root\n")
