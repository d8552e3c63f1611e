"""The systemd units: what the issue asks of them, ``systemd-analyze verify`` and ``security``.

``systemd-analyze verify`` refuses a unit whose ExecStart binary does not
exist, and the venv under /opt is not on a test machine: the test verifies a
copy of each unit, in a temporary directory, whose ExecStart program is
``/bin/true`` with the same arguments; everything else is the shipped file.
The template is verified (and rated) as the instance ``breakoutd@paper.service``
so that its specifiers are resolved. A warning about the unit fails the test:
verify reports unknown keys and bad values but still exits 0.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from breakoutd.cli.main import build_parser
from breakoutd.daemon.control import control_socket_path
from breakoutd.ibkr.settings import BrokerSettings
from tests.systemd.debian import debian_tool

SYSTEMD = Path(__file__).resolve().parents[2] / "systemd"
EXEC = "/opt/breakoutd/venv/bin/breakoutd"
INSTANCE = "paper"
UNITS = [("breakoutd.service", "breakoutd.service"),
         ("breakoutd@.service", f"breakoutd@{INSTANCE}.service")]
MAX_EXPOSURE = 2.0
APT_SLACK = pytest.mark.timeout(900)  # installing systemd on a bare machine takes a while

Unit = dict[str, list[tuple[str, str]]]


def parse_unit(text: str) -> Unit:
    """Sections of ``Key=value`` pairs in file order (a key may repeat)."""
    unit: Unit = {}
    section = ""
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            unit[section] = []
            continue
        key, _, value = line.partition("=")
        unit[section].append((key, value))
    return unit


def values(unit: Unit, key: str, section: str = "Service") -> list[str]:
    return [v for k, v in unit[section] if k == key]


def one(unit: Unit, key: str, section: str = "Service") -> str:
    found = values(unit, key, section)
    assert len(found) == 1, f"{key}= appears {len(found)} times in [{section}]"
    return found[0]


def load(name: str) -> Unit:
    return parse_unit((SYSTEMD / name).read_text())


def analyze() -> str:
    return debian_tool("systemd-analyze", "systemd")


# --- what the units say -----------------------------------------------------------


def test_the_service_is_notify_with_watchdog_reload_and_restart_policy() -> None:
    u = load("breakoutd.service")
    assert one(u, "Type") == "notify" and one(u, "NotifyAccess") == "main"
    assert one(u, "WatchdogSec") == "30"
    assert shlex.split(one(u, "ExecReload")) == ["/bin/kill", "-HUP", "$MAINPID"]
    assert one(u, "Restart") == "on-failure"
    assert one(u, "RestartPreventExitStatus") == "2"  # a person must fix something
    assert values(u, "EnvironmentFile") == ["/etc/breakoutd/env"]
    assert one(u, "User") not in ("", "root", "0")
    assert one(u, "StateDirectory") == "breakoutd"
    assert one(u, "ConfigurationDirectory") == "breakoutd"
    assert one(u, "WantedBy", "Install") == "multi-user.target"


def test_the_service_is_hardened_as_the_issue_lists() -> None:
    u = load("breakoutd.service")
    for key, want in [("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"),
                      ("ProtectHome", "yes"), ("PrivateTmp", "yes"), ("PrivateDevices", "yes"),
                      ("CapabilityBoundingSet", ""), ("AmbientCapabilities", "")]:
        assert one(u, key) == want, key
    assert values(u, "SystemCallFilter")[0] == "@system-service"
    # The network for the gateway, a unix socket for sd_notify; nothing else.
    assert set(one(u, "RestrictAddressFamilies").split()) == {"AF_UNIX", "AF_INET", "AF_INET6"}
    assert values(u, "ReadWritePaths") == []  # StateDirectory= is its only writable place


def exec_args(u: Unit, flags: str = "--log-json") -> list[str]:
    """ExecStart's arguments as the daemon would get them, for instance ``paper``."""
    line = one(u, "ExecStart").replace("$BREAKOUTD_FLAGS", flags)
    line = line.replace("%E", "/etc").replace("%S", "/var/lib").replace("%i", INSTANCE)
    return shlex.split(line)


@pytest.mark.parametrize(("name", "state", "config"), [
    ("breakoutd.service", "breakoutd", "breakoutd"),
    ("breakoutd@.service", "breakoutd-%i", "breakoutd/%i"),
])
def test_exec_start_runs_the_daemon_on_its_own_directories(name: str, state: str,
                                                           config: str) -> None:
    u = load(name)
    argv = exec_args(u)
    assert argv[0] == EXEC
    args = build_parser().parse_args(argv[1:])  # the real command line accepts it
    assert args.command == "run" and args.log_json and not args.sim
    assert one(u, "StateDirectory") == state
    assert str(args.var) == "/var/lib/" + state.replace("%i", INSTANCE)
    # systemd sets RUNTIME_DIRECTORY to /run/<RuntimeDirectory>: the control socket is there,
    # private to the service's user.
    assert one(u, "RuntimeDirectory") == state and one(u, "RuntimeDirectoryMode") == "0700"
    runtime = "/run/" + state.replace("%i", INSTANCE)
    assert (control_socket_path(args.var, {"RUNTIME_DIRECTORY": runtime})
            == Path(runtime, "control.sock"))
    assert one(u, "ConfigurationDirectory") == config
    assert str(args.watchlists) == f"/etc/{config.replace('%i', INSTANCE)}/watchlists"


def test_the_template_differs_only_in_names_and_directories() -> None:
    single, template = load("breakoutd.service"), load("breakoutd@.service")
    per_instance = {"Description", "EnvironmentFile", "StateDirectory",
                    "ConfigurationDirectory", "RuntimeDirectory", "ExecStart"}
    for section in single:
        assert ([kv for kv in single[section] if kv[0] not in per_instance]
                == [kv for kv in template[section] if kv[0] not in per_instance]), section
    # Every instance reads its own settings, after the optional shared ones.
    assert values(template, "EnvironmentFile") == ["-/etc/breakoutd/env",
                                                   "/etc/breakoutd/%i/env"]


def test_env_example_is_a_paper_setup() -> None:
    env = {}
    for line in (SYSTEMD / "env.example").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key] = value
    s = BrokerSettings.from_env(env)
    assert (s.host, s.port, s.live, s.account) == ("127.0.0.1", 4002, False, None)
    assert "BREAKOUTD_FLAGS" in env  # the unit's ExecStart expands it


# --- systemd-analyze --------------------------------------------------------------


def runnable_copy(name: str, folder: Path) -> Path:
    """The unit with ExecStart's program replaced by /bin/true (see the module docstring)."""
    text = (SYSTEMD / name).read_text()
    copy, count = re.subn(rf"^ExecStart={re.escape(EXEC)} ", "ExecStart=/bin/true ", text,
                          flags=re.M)
    assert count == 1
    (folder / name).write_text(copy)
    return folder / name


@APT_SLACK
@pytest.mark.parametrize(("name", "target"), UNITS)
def test_systemd_analyze_verify_accepts_the_unit(name: str, target: str, tmp_path: Path) -> None:
    tool = analyze()
    runnable_copy(name, tmp_path)
    done = subprocess.run([tool, "verify", str(tmp_path / target)], capture_output=True,
                          text=True, timeout=120, check=False)
    complaints = [line for line in (done.stdout + done.stderr).splitlines()
                  if "breakoutd" in line or str(tmp_path) in line]
    assert done.returncode == 0 and complaints == [], done.stdout + done.stderr


@APT_SLACK
def test_verify_would_see_a_missing_program(tmp_path: Path) -> None:
    """The rewrite above is needed: the shipped unit's program is not on this machine."""
    if Path(EXEC).exists():
        pytest.skip(f"{EXEC} is installed here")
    tool = analyze()
    (tmp_path / "breakoutd.service").write_text((SYSTEMD / "breakoutd.service").read_text())
    done = subprocess.run([tool, "verify", str(tmp_path / "breakoutd.service")],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode != 0 and EXEC in done.stderr


def exposure(tool: str, unit: Path) -> float:
    """The "Overall exposure level" systemd-analyze gives a unit file, offline."""
    help_text = subprocess.run([tool, "security", "--help"], capture_output=True, text=True,
                               timeout=60, check=False).stdout
    if "--offline" not in help_text:
        pytest.skip("systemd-analyze security --offline needs systemd 252 or newer")
    done = subprocess.run([tool, "security", "--offline=true", "--no-pager", str(unit)],
                          capture_output=True, text=True, timeout=120, check=False)
    found = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", done.stdout)
    assert found, done.stdout + done.stderr
    return float(found.group(1))


@APT_SLACK
@pytest.mark.parametrize(("name", "target"), UNITS)
def test_security_exposure_is_2_or_lower(name: str, target: str, tmp_path: Path) -> None:
    tool = analyze()
    runnable_copy(name, tmp_path)
    assert exposure(tool, tmp_path / target) <= MAX_EXPOSURE


@APT_SLACK
def test_the_exposure_check_can_fail(tmp_path: Path) -> None:
    """An unhardened unit rates far above the bar, so the number parsed above is real."""
    tool = analyze()
    (tmp_path / "bare.service").write_text("[Service]\nExecStart=/bin/true\n")
    assert exposure(tool, tmp_path / "bare.service") > 9.0


def test_a_tool_that_cannot_be_had_skips_saying_what_to_install(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)  # not root: no apt-get install
    with pytest.raises(pytest.skip.Exception) as skipped:
        debian_tool("systemd-analyze", "systemd")
    assert "install the Debian package 'systemd'" in str(skipped.value)
