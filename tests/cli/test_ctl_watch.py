"""``breakoutctl status --watch``: the live view redraws what the status file says now."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from breakoutd.cli.ctl_watch import watch
from breakoutd.core import events as ev
from tests.cli.test_ctl_status import NOW_NS, write_status


def test_the_view_redraws_in_place_as_the_daemon_changes(tmp_path: Path) -> None:
    write_status(tmp_path)
    out = io.StringIO()
    console = Console(file=out, width=140, force_terminal=True, color_system=None)
    frames: list[str] = []

    def sleep(_: float) -> None:  # between two redraws the daemon moves on
        frames.append(out.getvalue())
        if len(frames) == 1:
            write_status(tmp_path, ev.Expired(at=NOW_NS, watcher_id="AAPL@190",
                                              reason="session_end", bars_evaluated=3))
        else:
            write_status(tmp_path, ev.DaemonState(at=NOW_NS, state="stopped"))

    assert watch(tmp_path, console=console, sleep=sleep, running=lambda: len(frames) < 2) == 0
    first, later = frames[0], out.getvalue()[len(frames[0]):]
    assert "breakoutd  RUNNING (1 armed, 1 waiting)" in first
    assert "watchers (1 armed, 1 waiting)" in first and "AAPL@190" in first
    assert "server time 2026-03-09 09:30:00 ET" in first
    assert "\x1b[" in later  # the cursor goes back up: the frame is redrawn where it was
    assert "RUNNING (0 armed, 1 waiting, 1 done)" in later
    assert "STOPPED" in later and "not connected: the daemon is not running" in later


def test_the_view_says_when_there_is_no_status_file(tmp_path: Path) -> None:
    out = io.StringIO()
    console = Console(file=out, width=300, force_terminal=True, color_system=None)
    assert watch(tmp_path, console=console, sleep=lambda _: None, running=lambda: False) == 0
    assert f"breakoutd is NOT RUNNING: no status file at {tmp_path / 'status.json'}" in (
        out.getvalue())
