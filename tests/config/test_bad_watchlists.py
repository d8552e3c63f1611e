"""Every mistake in the bad corpus is reported at its file and line, through the API and the CLI."""

from __future__ import annotations

import pytest

from breakoutd.cli.ctl import main
from breakoutd.config import ConfigError, load_watchlists
from breakoutd.errors import BreakoutdError, OperationalError
from tests.config.corpus import BAD, CASES, HERE, expectations, unmatched


@pytest.mark.parametrize("case", CASES)
def test_api_reports_every_expected_problem(case: str) -> None:
    given = str(BAD / case)
    with pytest.raises(ConfigError) as err:
        load_watchlists([given])
    reported = [str(p) for p in err.value.problems]
    missing, extra = unmatched(expectations(case, given), reported)
    assert (missing, extra) == ([], [])


@pytest.mark.parametrize("case", CASES)
def test_check_prints_problems_with_relative_paths(
    case: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(HERE)
    given = f"bad/{case}"
    assert main(["check", given]) == 1
    out = capsys.readouterr()
    printed = out.out.splitlines()
    missing, extra = unmatched(expectations(case, given), printed)
    assert (missing, extra) == ([], [])
    assert printed == sorted(printed, key=_file_and_line)
    assert "problem" in out.err


def _file_and_line(line: str) -> tuple[str, int]:
    file, _, rest = line.partition(":")
    number = rest.split(":", 1)[0]
    return file, int(number) if number.isdigit() else 0


def test_a_bad_watchlist_is_one_of_breakoutd_errors_but_not_operational() -> None:
    """Callers that catch breakoutd's errors catch it; the daemon's one-line stop does not."""
    with pytest.raises(BreakoutdError) as err:
        load_watchlists([str(BAD / CASES[0])])
    assert isinstance(err.value, ConfigError) and not isinstance(err.value, OperationalError)
