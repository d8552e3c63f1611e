"""``breakoutctl check``: one ``ok:`` line or every problem, and the exit status."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from breakoutd.cli.ctl import main

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BREAKOUTD_WATCHLISTS", raising=False)


def test_check_summarises_a_valid_configuration(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(REPO / "watchlists")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "ok: 3 files, 5 watchers (1 disabled), 4 presets"
    assert out[1].startswith("scan: TOP_PERC_GAIN at 08:30, 09:00, 09:25: top 2 of 20")


def test_check_defaults_to_the_watchlists_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["check"]) == 1
    assert capsys.readouterr().out == "watchlists: no such file or directory\n"
    shutil.copytree(REPO / "watchlists", tmp_path / "watchlists")
    assert main(["check"]) == 0
    assert capsys.readouterr().out.startswith("ok: 3 files, 5 watchers")


def test_check_reads_paths_from_the_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    one = tmp_path / "one.yaml"
    one.write_text("breakouts:\n  - {symbol: A, level: 1, qty: 1}\n")
    two = tmp_path / "two.yaml"
    two.write_text("breakouts:\n  - {symbol: B, level: 1, qty: 1, enabled: false}\n")
    monkeypatch.setenv("BREAKOUTD_WATCHLISTS", os.pathsep.join([str(one), str(two)]))
    assert main(["check"]) == 0
    assert capsys.readouterr().out == "ok: 2 files, 2 watchers (1 disabled), 0 presets\n"


def test_check_prints_every_problem_of_every_file_in_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("lists").mkdir()
    Path("lists/b.yaml").write_text("breakouts:\n  - {symbol: A, level: 5, qty: 1, sl: 6}\n")
    Path("lists/a.yaml").write_text("breakouts:\n  - {symbol: B, level: 1, qty: 1.5}\nextra: 1\n")
    assert main(["check", "lists"]) == 1
    captured = capsys.readouterr()
    assert captured.out.splitlines() == [
        "lists/a.yaml:2: breakouts[0].qty: expected a whole number, got 1.5",
        "lists/a.yaml:3: extra: unknown key 'extra'; expected one of: presets, defaults, breakouts, risk, scan",
        "lists/b.yaml:2: breakouts[0].sl: 6 must be below level 5",
    ]
    assert captured.err == "3 problems found\n"


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["check", "--bogus"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main([])
    assert exc.value.code == 2
    assert "usage: breakoutctl" in capsys.readouterr().err


def test_check_starts_without_the_daemons_heavy_imports(tmp_path: Path) -> None:
    # An operator runs check on a large file before every session: its start-up is
    # part of the wait, so breakoutctl imports the event loop, the daemon's logging
    # and numpy only for the commands that use them.
    listing = tmp_path / "today.yaml"
    listing.write_text("breakouts:\n  - {symbol: A, level: 1, qty: 1}\n")
    script = ("import sys; from breakoutd.cli.ctl import main; main(['check', sys.argv[1]]); "
              "print(sorted(m for m in ('asyncio', 'loguru', 'numpy') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", script, str(listing)], cwd=REPO,
                            capture_output=True, text=True, check=True)
    assert result.stdout.splitlines() == ["ok: 1 file, 1 watcher (0 disabled), 0 presets", "[]"]
