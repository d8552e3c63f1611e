"""docs/deploy.md: its notification rule runs on the daemon's real ``--log-json`` lines."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from loguru import logger

from breakoutd.core import events as ev
from breakoutd.daemon.console import setup_console
from tests.systemd.debian import debian_tool

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "deploy.md").read_text()


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", DOC, flags=re.S)


@pytest.fixture
def json_console() -> Iterator[io.StringIO]:
    """The console of ``breakoutd run --log-json``, written to a buffer."""
    out = io.StringIO()
    log = setup_console(json_lines=True, stream=out)
    fill = ev.OrderFilled(at=1, order_ref="bo:20260309:rth:DEMO@10.00", role="entry", rung=0,
                          order_id=12, exec_id="e1", symbol="DEMO", side="BOT", qty=100,
                          price=Decimal("10.02"), cum_qty=100)
    log(ev.WatcherStarted(at=1, watcher_id="DEMO@10.00", symbol="DEMO", level=Decimal("10.00"),
                          session_day="2026-03-09", disarm_at=2))
    log(fill)
    log(ev.Rejected(at=2, watcher_id="XYZ@5.00", reason="quote_stale", kind="close",
                    trigger_at=2))
    log(ev.ConnectionLost(at=3, reason="socket closed"))
    log(ev.DaemonState(at=4, state="running", detail="1 armed"))
    logger.error("the daemon stops on an error: {}", "boom")
    log.flush()  # the console writes on threads of its own: wait for them
    out.write("Traceback (most recent call last):\n")  # what a crash prints on stderr
    try:
        yield out
    finally:
        log.close()
        logger.remove()
        logger.add(sys.stderr)


def test_the_jq_rule_passes_exactly_the_notify_lines(json_console: io.StringIO) -> None:
    found = re.search(r"jq (-R -c --unbuffered) '([^']+)'", DOC)
    assert found, "the jq rule is not in docs/deploy.md"
    jq = debian_tool("jq", "jq")
    done = subprocess.run([jq, *found.group(1).split(), found.group(2)],
                          input=json_console.getvalue(), capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    passed = [json.loads(line)["message"] for line in done.stdout.splitlines()]
    assert passed == ["FILLED entry #12: BOT 100 DEMO @ 10.02",
                      "XYZ@5.00: REJECTED quote_stale",
                      "DISCONNECTED: socket closed",
                      "the daemon stops on an error: boom"]


def test_the_documented_json_line_has_the_daemons_shape(json_console: io.StringIO) -> None:
    documented = json.loads(blocks("json")[0])
    real = [json.loads(line) for line in json_console.getvalue().splitlines()
            if line.startswith("{")]
    fill = next(r for r in real if r.get("event", {}).get("event") == "OrderFilled")
    assert documented.keys() == fill.keys()
    assert documented["event"].keys() == fill["event"].keys()
    assert (documented["message"], documented["notify"]) == (fill["message"], True)


def test_the_vector_example_routes_on_notify_from_the_unit() -> None:
    config = yaml.safe_load(blocks("yaml")[0])
    source = config["sources"]["breakoutd"]
    assert source["type"] == "journald" and source["include_units"] == ["breakoutd"]
    assert (ROOT / "systemd" / "breakoutd.service").exists()
    notify = config["transforms"]["notify"]
    assert notify["type"] == "filter" and ".notify == true" in notify["condition"]
    assert config["sinks"]["pager"]["inputs"] == ["notify"]


def test_the_files_the_install_steps_name_exist() -> None:
    named = set(re.findall(r"(?<![/\w])(systemd/[\w@.-]+|watchlists/)", DOC))
    assert {"systemd/breakoutd.service", "systemd/breakoutd@.service",
            "systemd/env.example"} <= named
    for rel in named:
        assert (ROOT / rel).exists(), rel
