"""The daemon as a process: `breakoutd run --sim` starts, trades and stops on a signal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from breakoutd.daemon.journal import read_journal

ROOT = Path(__file__).resolve().parents[2]


def _wait_for_line(proc: subprocess.Popen[str], needle: str, timeout: float) -> list[str]:
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    assert proc.stderr is not None
    os.set_blocking(proc.stderr.fileno(), True)
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line)
        if needle in line:
            return lines
    raise AssertionError(f"no {needle!r} within {timeout}s:\n" + "".join(lines))


def test_sighup_reloads_and_sigterm_stops_cleanly_with_nothing_lost(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "breakoutd.cli.main", "run", "--sim", "--var", str(tmp_path),
         "--watchlists", str(ROOT / "watchlists")],
        cwd=ROOT, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    try:
        lines = _wait_for_line(proc, "daemon running", 60)
        assert any("armed, level" in line for line in lines)
        proc.send_signal(signal.SIGHUP)  # systemctl reload
        _wait_for_line(proc, "watchlists unchanged (SIGHUP)", 30)
        proc.send_signal(signal.SIGTERM)
        _, rest = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, rest
    assert "daemon stopped" in rest
    days = list((tmp_path / "journal").iterdir())
    assert len(days) == 1
    events = read_journal(days[0] / "events.jsonl")
    names = [e["event"] for e in events]
    assert names[0] == "DaemonState" and events[-1]["state"] == "stopped"
    assert names.count("WatcherStarted") == 4
    assert names.count("Stopped") == 4  # every armed watcher stopped, none fired
    assert (days[0] / "gateway.jsonl").read_text().count("2104") >= 1
