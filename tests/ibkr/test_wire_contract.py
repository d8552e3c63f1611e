"""The fence around ib_async's internals (breakoutd.ibkr.wire): what it uses exists on
the installed ib_async, nothing outside it uses internals, and another version is refused."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from ib_async import IB, OrderStatus, Ticker

from breakoutd.errors import OperationalError
from breakoutd.ibkr.wire.members import USED
from breakoutd.ibkr.wire.version import REQUIRED, check_version, installed_version

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "breakoutd"
FENCE = PACKAGE / "ibkr" / "wire"


def owners() -> dict[str, object]:
    ib = IB()
    return {"IB": ib, "Client": ib.client, "Connection": ib.client.conn, "Wrapper": ib.wrapper,
            "OrderStatus": OrderStatus(), "Ticker": Ticker()}


@pytest.mark.parametrize("member", USED, ids=lambda m: f"{m.owner}.{m.name}")
def test_every_member_the_fence_uses_exists_on_the_installed_ib_async(member: object) -> None:
    owner, name = member.owner, member.name  # type: ignore[attr-defined]
    assert hasattr(owners()[owner], name), f"ib_async {installed_version()} has no {owner}.{name}"


def test_the_private_state_the_feed_keeps_has_the_shape_it_expects() -> None:
    client = IB().client
    assert client._data == b"" and client._apiReady is False
    assert client._numBytesRecv == 0 and client._numMsgRecv == 0
    reads = client.conn.hasData
    assert len(reads) == 1
    reads -= client._onSocketHasData  # the reader the feed takes the socket from
    assert len(reads) == 0
    assert IB().wrapper.orderKey(3, 17, 0) == (3, 17)  # trade_of's key


def test_every_private_member_in_the_fence_is_listed() -> None:
    listed = {m.name for m in USED}
    found = set()
    for path in FENCE.glob("*.py"):
        for name in re.findall(r"(?<!self)\.(_[a-zA-Z]\w*)", path.read_text()):
            if not name.startswith("__"):
                found.add(name)
    own = {"_client", "_on_data"}  # the fence's own attributes, reached through self
    assert found - own <= listed, f"unlisted: {sorted(found - own - listed)}"


# What only the fence may do: reach ib_async's Client or Wrapper, its private members,
# raw messages, and rewrite ib_async's own objects (statuses, cached tickers).
_FORBIDDEN = [re.compile(p) for p in (
    r"\.client\b", r"\.wrapper\b", r"\bsendMsg\b", r"\.orderStatus\.status\s*=[^=]",
    r"\.ticker\(", r"\bgetReqId\b", r"\bupdateReqId\b",
    *(rf"\.{re.escape(m.name)}\b" for m in USED if m.name.startswith("_")))]


def test_nothing_outside_the_fence_touches_ib_async_internals() -> None:
    hits = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if FENCE in path.parents or (PACKAGE / "sim") in path.parents:
            continue  # the sim is the gateway, not an ib_async client
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if any(p.search(line) for p in _FORBIDDEN):
                hits.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert hits == []


def test_the_version_checked_is_the_one_pyproject_pins() -> None:
    pins = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert f"ib_async=={REQUIRED}" in pins
    check_version()  # the installed one passes


def test_another_ib_async_version_is_refused_with_one_clear_line() -> None:
    with pytest.raises(OperationalError) as caught:
        check_version("2.2.0")
    text = str(caught.value)
    assert "\n" not in text
    assert "ib_async 2.2.0 is installed" in text and f"ib_async=={REQUIRED}" in text


def test_the_daemon_refuses_to_start_on_another_ib_async_version(tmp_path: Path) -> None:
    # Another version "installed": its metadata first on the path (the code stays 2.1.0's).
    dist = tmp_path / "site" / "ib_async-2.2.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: ib_async\nVersion: 2.2.0\n")
    watchlists = tmp_path / "watchlists"
    watchlists.mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "breakoutd.cli.main", "run", "--watchlists", str(watchlists),
         "--var", str(tmp_path / "var")],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={"PYTHONPATH": f"{tmp_path / 'site'}:{ROOT}", "PATH": "/usr/bin:/bin",
             "IB_PORT": "1"})
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if "ib_async" in line]
    assert lines == [f"breakoutd: ib_async 2.2.0 is installed but breakoutd needs "
                     f"ib_async=={REQUIRED} (it uses that version's internals); install it "
                     f"with: pip install ib_async=={REQUIRED}"]
