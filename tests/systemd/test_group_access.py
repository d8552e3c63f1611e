"""An operator in the daemon's group reads its status and state and edits the watchlists.

The daemon runs with the unit's ``UMask=0027`` into a var it owns (``StateDirectoryMode=0750``);
the watchlists are ``root:breakoutd`` with ``2775``/``0664`` as docs/deploy.md installs them.
``breakoutctl status`` and ``plan`` then run as a user who is not root, in the daemon's group
(the identity is dropped in a forked child, as setpriv does, because the interpreter itself may
live where other users cannot reach), and as a user outside it, who is told why not.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from breakoutd.cli.ctl import main as ctl

ROOT = Path(__file__).resolve().parents[2]
DAEMON = 61731  # uid and gid of the daemon's user, `breakoutd`
OPERATOR = 61732  # a person in the daemon's group
STRANGER = 61733  # a user outside it

pytestmark = pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0,
                                reason="changing users needs root")


@pytest.fixture
def base() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="breakoutd-group-"))
    path.chmod(0o755)  # pytest's tmp_path is private to root
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _daemon_writes(var: Path) -> None:
    """`breakoutd run --sim` with the unit's umask, until it runs; then SIGTERM."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "breakoutd.cli.main", "run", "--sim", "--var", str(var),
         "--watchlists", str(ROOT / "watchlists")],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL, text=True, preexec_fn=lambda: os.umask(0o027))
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + 60  # a bound on a hang, not a timing assertion
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            assert line, "the daemon exited early"
            if "daemon running" in line:
                break
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    for path in [var, *var.rglob("*")]:  # what the daemon's own user would have written
        os.lchown(path, DAEMON, DAEMON)
    var.chmod(0o750)


def _install_watchlists(target: Path) -> None:
    shutil.copytree(ROOT / "watchlists", target)
    os.chown(target, 0, DAEMON)
    target.chmod(0o2775)
    for f in target.iterdir():
        os.chown(f, 0, DAEMON)
        f.chmod(0o664)


def _as_user(uid: int, groups: list[int], work: Callable[[], object]) -> object:
    """``work()``'s result (JSON), run in a child that dropped root for ``uid``."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 1
        try:
            os.close(read)
            os.setgroups(groups)
            os.setgid(uid)
            os.setuid(uid)
            os.umask(0o002)
            with os.fdopen(write, "w") as out:
                out.write(json.dumps(work()))
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read) as inp:
        text = inp.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0 and text
    return json.loads(text)


def _ctl(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = ctl(list(argv))
    return code, out.getvalue()


def test_the_daemon_s_group_reads_status_and_state_and_edits_the_watchlists(base: Path) -> None:
    var, lists = base / "var", base / "watchlists"
    _daemon_writes(var)
    _install_watchlists(lists)
    for argv in (("status", "--var", str(var)), ("plan", "--var", str(var), str(lists))):
        _ctl(*argv)  # as root first: every module the commands use is imported

    def operator() -> object:
        status = _ctl("status", "--var", str(var))
        plan = _ctl("plan", "--var", str(var), str(lists))
        example = lists / "example.yaml"
        example.write_text(example.read_text().replace("sl: 9.80", "sl: 9.70"))
        return [status, plan, _ctl("plan", "--var", str(var), str(lists))]

    (status_code, status), (plan_code, plan), (_, edited) = _as_user(  # type: ignore[misc]
        OPERATOR, [DAEMON], operator)
    assert status_code == 3 and "\nbreakoutd  STOPPED  pid" in status
    assert "DEMO@10.00" in status
    assert plan_code == 0 and plan.splitlines()[-1].startswith("nothing to change")
    assert "~ DEMO@10.00: sl 9.80 -> 9.70" in edited

    def stranger() -> object:
        return [_ctl("status", "--var", str(var)), _ctl("plan", "--var", str(var), str(lists))]

    (code, shown), (plan_code, plan) = _as_user(STRANGER, [], stranger)  # type: ignore[misc]
    assert code == 3 and shown == (
        f"{var / 'status.json'}: cannot read the status file: Permission denied\n")
    assert plan_code == 1 and "Permission denied" in plan
