"""docs/operator.md says what the code does: its commands, exit codes, protocol and limits."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from breakoutd.cli import ctl_control
from breakoutd.cli.ctl import build_parser
from breakoutd.daemon import control
from breakoutd.daemon.control import ControlRequest, decode_request, decode_result

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "operator.md").read_text()


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", DOC, flags=re.S)


def test_every_control_command_is_documented_and_parses() -> None:
    for command in control.COMMANDS:
        assert f"`breakoutctl {command}" in DOC, command
    parser = build_parser()
    for line in re.findall(r"^\| `breakoutctl ([^`]+)` \|", DOC, flags=re.M):
        argv = [w for w in shlex.split(line) if w not in ("WATCHER", "SYMBOL")]
        argv += ["AAPL@190"] if argv[0] in ("cancel", "stop") or argv == ["flatten"] else []
        assert parser.parse_args(argv).run is ctl_control.cmd_control, line


def test_the_exit_code_table_is_the_codes_breakoutctl_returns() -> None:
    table = dict(re.findall(r"^\| (\d) \| (.+?) \|$", DOC, flags=re.M))
    assert set(table) == {"0", "1", "2", "3", "4"}
    assert ctl_control.DONE == 0 and "done" in table["0"]
    assert ctl_control.REFUSED == 1 and "refused" in table["1"]
    assert ctl_control.USAGE == 2 and "usage" in table["2"]
    assert ctl_control.NOT_RUNNING == 3 and "not running" in table["3"]
    assert f"{ctl_control.ANSWER_TIMEOUT:g} s" in table["3"]
    assert ctl_control.NOT_ALLOWED_EXIT == 4 and "not allowed" in table["4"]


def test_the_protocol_examples_and_limits_are_the_daemons() -> None:
    request, answer = blocks("json")
    assert decode_request(request.encode()) == ControlRequest(command="flatten",
                                                              target="AAPL@190")
    assert decode_result(answer.encode()).ok is True
    assert f"at most {control.MAX_REQUEST} bytes" in DOC
    assert f"within {control.READ_TIMEOUT:g} seconds" in DOC


def test_the_deployed_command_finds_the_units_socket() -> None:
    unit = (ROOT / "systemd" / "breakoutd.service").read_text()
    runtime = re.search(r"^RuntimeDirectory=(\S+)$", unit, flags=re.M)
    assert runtime
    sh = blocks("sh")[0]
    assert f"RUNTIME_DIRECTORY=/run/{runtime.group(1)} " in sh
    assert control.control_socket_path(Path("/var/lib/breakoutd"), {
        "RUNTIME_DIRECTORY": f"/run/{runtime.group(1)}"}) == Path("/run/breakoutd/control.sock")
