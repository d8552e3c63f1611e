"""What an operator sees when something is wrong: one line saying what to do, no traceback."""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from breakoutd import __version__
from breakoutd.cli.ctl import main as ctl
from breakoutd.cli.run_cmd import _defaults_from_env
from breakoutd.daemon.status_view import wall_iso

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def test_both_commands_say_their_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        ctl(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out == f"breakoutctl {__version__}\n"
    out = subprocess.run([sys.executable, "-m", "breakoutd.cli.main", "--version"], cwd=ROOT,
                         env=ENV, capture_output=True, text=True, check=True).stdout
    assert out == f"breakoutd {__version__}\n"


def test_status_into_head_ends_quietly(tmp_path: Path) -> None:
    # A status of a few hundred kilobytes: more than a pipe holds, so head leaves early.
    watchers = [{"id": f"W{i}@1.00", "symbol": f"W{i}", "level": 1.0, "session": "rth",
                 "state": "armed"} for i in range(4000)]
    (tmp_path / "status.json").write_text(json.dumps({
        "version": 1, "state": "running", "pid": os.getpid(), "interval": 3600,
        "started_at": wall_iso(time.time()), "heartbeat": wall_iso(time.time()),
        "broker": {}, "config": {}, "watchers": watchers}))
    done = subprocess.run(f"'{sys.executable}' -m breakoutd.cli.ctl status --var '{tmp_path}' "
                          "| head -n 1", shell=True, cwd=ROOT, env=ENV, capture_output=True,
                          text=True, timeout=60)
    assert done.stdout.startswith("breakoutd  RUNNING (4000 armed, 0 waiting)")
    assert done.stderr == ""


def test_an_unreadable_status_file_is_one_line(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "status.json").mkdir()  # reading it fails as a permission error would
    assert ctl(["status", "--var", str(tmp_path)]) == 3
    assert capsys.readouterr().out == (
        f"{tmp_path / 'status.json'}: cannot read the status file: Is a directory\n")


def test_breakoutd_run_takes_var_and_watchlists_from_the_environment() -> None:
    args = argparse.Namespace(var=None, watchlists=None)
    _defaults_from_env(args, {"BREAKOUTD_VAR": "/srv/bo", "BREAKOUTD_WATCHLISTS": f"a{os.pathsep}b"})
    assert (args.var, args.watchlist_paths) == (Path("/srv/bo"), [Path("a"), Path("b")])
    args = argparse.Namespace(var=Path("v"), watchlists=Path("w"))
    _defaults_from_env(args, {"BREAKOUTD_VAR": "/srv/bo"})
    assert (args.var, args.watchlist_paths) == (Path("v"), [Path("w")])
    args = argparse.Namespace(var=None, watchlists=None)
    _defaults_from_env(args, {})
    assert (args.var, args.watchlist_paths) == (Path("var"), [Path("watchlists")])


def test_a_live_account_is_refused_in_one_line_saying_what_to_change(tmp_path: Path) -> None:
    sim = subprocess.Popen(
        [sys.executable, "-m", "breakoutd.cli.main", "sim", "--port", "0", "--synthetic", "1",
         "--symbols", "DEMO,ACME,PENNY,GAPR", "--account", "U7654321"],
        cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert sim.stderr is not None
        port = None
        while port is None:
            line = sim.stderr.readline()
            assert line, "breakoutd sim exited early"
            found = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
            port = int(found.group(1)) if found else None
        done = subprocess.run(
            [sys.executable, "-m", "breakoutd.cli.main", "run", "--var", str(tmp_path / "var"),
             "--watchlists", str(ROOT / "watchlists")],
            cwd=ROOT, env={**ENV, "IB_PORT": str(port), "BREAKOUTD_LIVE": ""},
            capture_output=True, text=True, timeout=60)
    finally:
        sim.terminate()
        sim.wait(10)
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    fix = [line for line in lines if "BREAKOUTD_LIVE" in line]
    assert len(fix) == 1 and fix[0].endswith(
        "ERROR   the daemon stops: account U7654321 is a live account; refusing to trade it. "
        "To trade real money set BREAKOUTD_LIVE=1 and IB_ACCOUNT=U7654321")
    assert "Traceback" not in done.stderr and len(lines) <= 6, done.stderr
