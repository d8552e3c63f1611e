"""The runtime directory of a ``--sim`` run: each run starts clean.

A simulated day is a virtual one: two runs on the same afternoon trade the
same virtual date, and a second run would find the first one's state (what
fired, the broker it talked to, its orders and positions) and arm nothing.
So a ``--sim`` run moves the previous run's journals, state and status to
``<var>/previous/`` and says so. It never does that to a directory holding
a daemon's files that were not written by ``--sim`` (today's state is what
keeps a live daemon from buying twice), nor while a daemon is running there.
"""

from __future__ import annotations

import json
import shutil
import socket
from collections.abc import Mapping
from pathlib import Path

from breakoutd.daemon.control import control_socket_path
from breakoutd.errors import OperationalError

MARKER = "sim-run.json"
PREVIOUS = "previous"
RUN_FILES = ("journal", "state", "status.json", MARKER)
SIM_ACCOUNT = "DU0000001"  # the simulated gateway's account


def _daemon_answers(var: Path, env: Mapping[str, str]) -> bool:
    path = control_socket_path(var, env)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        try:
            sock.connect(str(path))
        except OSError:
            return False
    return True


def _written_by_sim(var: Path) -> bool:
    """True when every journal day in ``var`` traded the simulated gateway's account."""
    if (var / MARKER).exists():
        return True
    days = sorted((var / "journal").glob("*/events.jsonl"))
    if not days and (var / "state").exists() and any((var / "state").glob("????-??-??.json")):
        return False  # state without journals: not ours to move
    for events in days:
        accounts = set()
        with events.open(encoding="utf-8", errors="replace") as f:
            for line in f:
                if '"ConnectionUp"' in line:
                    try:
                        accounts.add(json.loads(line).get("account"))
                    except ValueError:
                        continue
        if accounts != {SIM_ACCOUNT}:
            return False
    return True


def prepare_sim_var(var: Path, day: str, env: Mapping[str, str]) -> bool:
    """Make ``var`` ready for a fresh ``--sim`` run of virtual ``day``; True when a
    previous run's files were moved to ``var/previous``."""
    present = [name for name in RUN_FILES if (var / name).exists()]
    if present and _daemon_answers(var, env):
        raise OperationalError(f"a daemon is running with --var {var}; stop it, or give "
                               "--sim a directory of its own with --var DIR")
    if present and not _written_by_sim(var):
        raise OperationalError(f"{var} holds a daemon's journals or state not written by --sim; "
                               "give --sim a directory of its own with --var DIR")
    moved = False
    if present:
        previous = var / PREVIOUS
        shutil.rmtree(previous, ignore_errors=True)
        previous.mkdir(parents=True)
        for name in present:
            (var / name).rename(previous / name)
        moved = True
    var.mkdir(parents=True, exist_ok=True)
    (var / MARKER).write_text(json.dumps({"virtual_day": day}) + "\n", encoding="utf-8")
    return moved
