"""Backtest warnings for what the tapes do not cover, and file errors that name the file."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from breakoutd.backtest.coverage import coverage_warnings
from breakoutd.cli.main import main
from breakoutd.config import load_watchlist_text
from breakoutd.tape import synthetic_tape

DAY = dt.date(2026, 3, 9)
WATCHLIST = """\
breakouts:
  - {symbol: DEMO, level: 10.00, qty: 100, tp: 10.50, sl: 9.80}
  - {symbol: ACME, level: 4.50, qty: 300, tp: 4.60, sl: 4.40}
  - {symbol: LATE, level: 5.00, qty: 10, enabled: false}
"""


def test_missing_symbols_and_short_tapes_are_warned_about() -> None:
    watchers = load_watchlist_text(WATCHLIST).watchers
    tape = synthetic_tape(1, ["DEMO"], DAY, end=dt.time(14, 21))
    assert coverage_warnings(tape, watchers) == [
        "warning: ACME@4.50: no tape has ACME; its result is only that nothing traded",
        "warning: DEMO@10.00: the DEMO tape ends at 14:21:00 ET, before the watcher's window "
        "closes at 16:00:00 ET: an expiry is the tape's end, not the market's",
    ]
    whole = synthetic_tape(1, ["DEMO", "ACME"], DAY, end=dt.time(16, 30))
    assert coverage_warnings(whole, watchers) == []


@pytest.mark.parametrize(("make", "said"), [
    (lambda p: p / "missing.csv.gz", "missing.csv.gz: no such file"),
])
def test_file_errors_name_the_file_not_an_errno(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                make: object, said: str) -> None:
    (tmp_path / "w.yaml").write_text(WATCHLIST)
    tape = make(tmp_path)  # type: ignore[operator]
    assert main(["backtest", "--tape", str(tape), "--watchlist", str(tmp_path / "w.yaml")]) == 1
    err = capsys.readouterr().err
    assert said in err and "Errno" not in err and err.startswith(f"breakoutd backtest: {tape}")
