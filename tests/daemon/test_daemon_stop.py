"""The daemon as a process stops promptly on SIGTERM or SIGINT, even while the gateway is down."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from breakoutd.daemon.journal import read_journal
from tests.daemon.test_daemon_process import ROOT, _wait_for_line

STOP_WITHIN = 5.0  # seconds: systemd's stop must not wait out a reconnect backoff
WATCHLIST = "breakouts:\n  - {symbol: AAA, level: 10.00, qty: 10}\n"


def _free_port() -> int:
    """A loopback port nothing listens on (the kernel's pick, released at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _daemon(tmp_path: Path, port: int, **env_extra: str) -> subprocess.Popen[str]:
    wl = tmp_path / "watchlists"
    wl.mkdir()
    (wl / "today.yaml").write_text(WATCHLIST)
    env = {**os.environ, "IB_PORT": str(port), "IB_HOST": "127.0.0.1", **env_extra}
    return subprocess.Popen(
        [sys.executable, "-m", "breakoutd.cli.main", "run", "--var", str(tmp_path / "var"),
         "--watchlists", str(wl)],
        cwd=ROOT, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)


def _stopped_within(proc: subprocess.Popen[str], sig: int) -> tuple[float, str]:
    """Send ``sig``; the seconds until the process ended and the rest of its stderr."""
    sent = time.monotonic()
    proc.send_signal(sig)
    try:
        _, rest = proc.communicate(timeout=STOP_WITHIN + 10)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError(f"still running {STOP_WITHIN + 10:g} s after the signal") from None
    return time.monotonic() - sent, rest


def _journal_ends_stopped(var: Path) -> None:
    days = list((var / "journal").iterdir())
    assert len(days) == 1
    events = read_journal(days[0] / "events.jsonl")
    assert events[-1]["event"] == "DaemonState" and events[-1]["state"] == "stopped"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_daemon_while_the_gateway_is_down(tmp_path: Path, sig: int) -> None:
    proc = _daemon(tmp_path, _free_port())
    try:
        # Refused twice: it is in the backoff between attempts when the signal comes.
        _wait_for_line(proc, "(attempt 2)", 30)
        took, rest = _stopped_within(proc, sig)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, rest
    assert took < STOP_WITHIN, rest
    assert "daemon stopped" in rest
    _journal_ends_stopped(tmp_path / "var")


def test_sigterm_stops_the_daemon_while_it_reconnects_to_a_gateway_that_went_away(
        tmp_path: Path) -> None:
    port = _free_port()
    sim = subprocess.Popen(
        [sys.executable, "-m", "breakoutd.cli.main", "sim", "--port", str(port), "--quiet",
         "--synthetic", "1", "--symbols", "AAA"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    proc = _daemon(tmp_path, port)
    try:
        _wait_for_line(proc, "daemon running", 60)
        sim.kill()  # the gateway dies: its socket closes under the daemon
        sim.wait(10)
        _wait_for_line(proc, "reconnecting in", 30)
        took, rest = _stopped_within(proc, signal.SIGTERM)
    finally:
        for p in (proc, sim):
            if p.poll() is None:
                p.kill()
    assert proc.returncode == 0, rest
    assert took < STOP_WITHIN, rest
    assert "daemon stopped" in rest
    _journal_ends_stopped(tmp_path / "var")


def test_a_gateway_that_accepts_the_socket_but_never_answers_is_said_and_retried(
        tmp_path: Path) -> None:
    """The kernel completes the TCP handshake of a listening socket nobody reads: the
    daemon's socket opens and the API handshake never comes back."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        proc = _daemon(tmp_path, silent.getsockname()[1], IB_CONNECT_TIMEOUT="1")
        try:
            seen = _wait_for_line(proc, "accepted the connection: waiting up to 1 s for its API handshake", 30)
            seen += _wait_for_line(proc, "no answer within 1 s to the API handshake", 30)
            seen += _wait_for_line(proc, "(attempt 1)", 30)  # the backoff's first delay
            # The second attempt is waiting for the handshake again when the signal comes.
            seen += _wait_for_line(proc, "accepted the connection", 30)
            took, rest = _stopped_within(proc, signal.SIGTERM)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0, rest
    assert took < STOP_WITHIN, rest
    assert "daemon stopped" in rest
    text = "".join(seen)
    assert "connecting to the gateway at 127.0.0.1:" in text and "(attempt 0)" in text
    assert "is this the API port of IB Gateway or TWS" in text
    days = list((tmp_path / "var" / "journal").iterdir())
    events = read_journal(days[0] / "events.jsonl")
    waits = [(e["attempt"], e["waiting_for"]) for e in events if e["event"] == "ConnectWaiting"]
    assert waits[:4] == [(0, "socket"), (0, "handshake"), (1, "socket"), (1, "handshake")]
    assert [e["delay"] > 0 for e in events if e["event"] == "Reconnecting"][:1] == [True]
    assert not any(e["event"] == "ConnectionUp" for e in events)
    _journal_ends_stopped(tmp_path / "var")
