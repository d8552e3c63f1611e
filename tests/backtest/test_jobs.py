"""``breakoutd backtest --jobs N``: the same bytes as one process, on stdout and stderr.

Each comparison runs the real command with its own worker processes, on the
recorded tapes and on built ones, with and without the risk limits that
couple a day's symbols and with named levels (``prior_*`` need the previous
day's tape in the unit that uses it).
"""

from __future__ import annotations

import datetime as dt
import gzip
from pathlib import Path

import pytest

from breakoutd.backtest.jobs import TapeIndex, index_file, plan_units
from breakoutd.backtest.workers import ProcessRunner, run_backtest_jobs
from breakoutd.cli.main import main
from breakoutd.config import load_watchlist_text
from breakoutd.tape import synthetic_tape, write_tape

TAPES = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "tapes"
RISK = "risk:\n  max_positions: 1\n  max_entries_per_day: 2\n"
REAL = """breakouts:
  - {symbol: SPY, level: 167.80, qty: 100, tp: 168.05, sl: 167.60}
  - {symbol: SPY, level: 166.50, qty: 100, tp: 167.50, sl: 166.00}
  - {symbol: SPY, level: opening_range_high, qty: 100}
  - {symbol: SPY, level: prior_high, qty: 100}
  - {symbol: SPY, level: prior_close, qty: 50, rule: momentum}
  - {symbol: BAC, level: 14.00, qty: 100}
  - {symbol: BAC, level: premarket_high, qty: 100, sl_below: 0.10, trail: 0.05}
  - {symbol: BAC, level: opening_range_high, qty: 100, rule: retest}
  - {symbol: BAC, level: prior_high, qty: 200}
  - {symbol: ZZZ, level: 3, qty: 100}
"""
DAYS = (dt.date(2026, 3, 9), dt.date(2026, 3, 10), dt.date(2026, 3, 11), dt.date(2026, 3, 12))
BUILT = """breakouts:
  - {symbol: AAA, level: 10.00, qty: 100, tp: 10.30, sl: 9.80}
  - {symbol: AAA, level: 10.40, qty: 100, tp: 10.80, sl: 10.20}
  - {symbol: AAA, level: prior_high, qty: 100}
  - {symbol: BBB, level: 4.50, qty: 100, tp: 4.70, sl: 4.40}
  - {symbol: BBB, level: prior_close, qty: 100}
  - {symbol: CCC, level: 20.00, qty: 10, tp: 20.50, sl: 19.50}
  - {symbol: CCC, level: premarket_high, qty: 10}
  - {symbol: DDD, level: 7.00, qty: 100}
"""


def _run(capfd: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capfd.readouterr()
    return code, out, err


def _same_for_all_jobs(capfd: pytest.CaptureFixture[str], argv: list[str],
                       jobs: tuple[int, ...] = (2,)) -> str:
    """The output of one process, after checking every ``--jobs`` gives the same bytes."""
    one = _run(capfd, *argv)
    assert one[0] == 0, one[2]
    for n in jobs:
        assert _run(capfd, *argv, "--jobs", str(n)) == one, f"--jobs {n}"
    return one[1]


def _built(tmp_path: Path) -> Path:
    """Four days of AAA, BBB, CCC: a file per day and symbol, except the second day of AAA
    and BBB in one file and CCC in two files of two days each (DDD trades on no day)."""
    levels = {"AAA": [10_000_000, 10_400_000], "BBB": [4_500_000], "CCC": [20_000_000]}
    root = tmp_path / "tapes"
    root.mkdir()
    ccc = {}
    for n, day in enumerate(DAYS):
        tape = synthetic_tape(11 + n, sorted(levels), day, levels=levels)
        if n == 1:
            write_tape(root / f"AB_{day:%Y%m%d}.csv", _only(tape, "AAA", "BBB"))
        else:
            for symbol in ("AAA", "BBB"):
                write_tape(root / f"{symbol}_{day:%Y%m%d}.csv.gz", _only(tape, symbol))
        ccc[n] = _only(tape, "CCC")
    write_tape(root / "CCC_first.csv.gz", _merge(ccc[0], ccc[1]))
    write_tape(root / "CCC_last.csv", _merge(ccc[2], ccc[3]))
    return root


def _only(tape, *symbols):  # type: ignore[no-untyped-def]
    from breakoutd.tape import Tape

    return Tape({s: tape.symbols[s] for s in symbols})


def _merge(a, b):  # type: ignore[no-untyped-def]
    from breakoutd.tape import iter_rows, tape_from_rows

    return tape_from_rows([*iter_rows(a), *iter_rows(b)])


@pytest.mark.realdata
@pytest.mark.parametrize("risk", ["", RISK], ids=["free", "risk"])
def test_the_recorded_days_give_the_same_bytes(tmp_path: Path, capfd: pytest.CaptureFixture[str],
                                               risk: str) -> None:
    if not TAPES.exists():
        pytest.skip("recorded tapes are not beside the checkout")
    (tmp_path / "w.yaml").write_text(risk + REAL)
    argv = ["backtest", "--tape", str(TAPES), "--watchlist", str(tmp_path / "w.yaml")]
    # Two and three workers, each on the table and the JSON, over the two tests.
    table = _same_for_all_jobs(capfd, argv, (3,) if risk else (2,))
    assert table.count(" watchers (") == 3 and "total over 3 days" in table
    assert "168.45 prior_high" in table  # 2013-10-07's high, known on the 8th
    if risk:
        assert "risk_max_positions" in table and "risk_max_entries" in table
    json = _same_for_all_jobs(capfd, [*argv, "--json"], (2,) if risk else (3,))
    assert len(json.splitlines()) == 30
    # A rule variant's entry is a trade of that kind (BAC's opening range retested on the 8th).
    retest = next(line for line in json.splitlines() if "BAC@opening_range_high" in line
                  and "2013-10-08" in line)
    assert '"kind": "retest"' in retest.split('"trade": ')[1]


@pytest.mark.parametrize("risk", ["", RISK], ids=["free", "risk"])
def test_built_tapes_give_the_same_bytes(tmp_path: Path, capfd: pytest.CaptureFixture[str],
                                         risk: str) -> None:
    root = _built(tmp_path)
    (tmp_path / "w.yaml").write_text(risk + BUILT)
    argv = ["backtest", "--tape", str(root), "--watchlist", str(tmp_path / "w.yaml")]
    table = _same_for_all_jobs(capfd, argv, (3,) if risk else (2,))
    assert "total over 4 days" in table
    days = [block for block in table.split("\n\n") if block.startswith("id ")]
    assert "- prior_high" in days[0]  # the first day has no day before it
    assert all(" prior_high" in d and "- prior_high" not in d for d in days[1:])
    if risk:
        assert "risk_max_positions" in table
    json = _same_for_all_jobs(capfd, [*argv, "--json"], (2,) if risk else (3,))
    assert len(json.splitlines()) == 8 * 4


def test_the_prior_tape_serves_the_first_day(tmp_path: Path,
                                             capfd: pytest.CaptureFixture[str]) -> None:
    root = _built(tmp_path)
    prior = tmp_path / "prior"
    prior.mkdir()
    for p in sorted(root.glob("*_20260309.csv.gz")):  # the first day, but for CCC
        p.rename(prior / p.name)
    for p in root.glob("CCC_*"):  # which has it beside the second day
        p.unlink()
    (tmp_path / "w.yaml").write_text(BUILT)
    argv = ["backtest", "--tape", str(root), "--prior-tape", str(prior), "--watchlist",
            str(tmp_path / "w.yaml"), "--json"]
    out = _same_for_all_jobs(capfd, argv)
    first = [line for line in out.splitlines() if '"day": "2026-03-10"' in line]
    assert any('"AAA@prior_high"' in line and '"level": null' not in line for line in first)


def test_a_bad_tape_is_named_as_one_process_names_it(tmp_path: Path,
                                                     capfd: pytest.CaptureFixture[str]) -> None:
    root = _built(tmp_path)
    bad = root / "BBB_20260311.csv.gz"
    lines = gzip.decompress(bad.read_bytes()).decode().splitlines(keepends=True)
    lines[40] = lines[40].replace(",BBB,", ",BBB,x", 1)
    bad.write_bytes(gzip.compress("".join(lines).encode()))
    (tmp_path / "w.yaml").write_text(BUILT)
    argv = ["backtest", "--tape", str(root), "--watchlist", str(tmp_path / "w.yaml")]
    one = _run(capfd, *argv)
    assert one[0] == 1 and one[1] == ""
    assert one[2].startswith(f"breakoutd backtest: {bad}:41: ")
    assert _run(capfd, *argv, "--jobs", "2") == one
    missing = ["backtest", "--tape", str(tmp_path / "none.csv"), "--tape", str(root),
               "--watchlist", str(tmp_path / "w.yaml")]
    one = _run(capfd, *missing)
    assert one[2] == f"breakoutd backtest: {tmp_path / 'none.csv'}: no such file\n"
    assert _run(capfd, *missing, "--jobs", "2") == one


def test_a_row_twice_across_files_is_found_as_by_one_process(
        tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    root = _built(tmp_path)
    text = (root / "AB_20260310.csv").read_text().splitlines(keepends=True)
    row = next(line for line in text if ",AAA," in line)
    (root / "extra.csv").write_text(text[0] + row)
    (tmp_path / "w.yaml").write_text(BUILT)
    argv = ["backtest", "--tape", str(root), "--watchlist", str(tmp_path / "w.yaml")]
    one = _run(capfd, *argv)
    assert one[0] == 1 and "second row for AAA" in one[2]
    assert _run(capfd, *argv, "--jobs", "2") == one


def test_units_are_symbols_of_a_day_read_from_the_same_files(tmp_path: Path) -> None:
    root = _built(tmp_path)
    index = TapeIndex([index_file(str(p)) for p in sorted(root.iterdir())])
    assert index.days == list(DAYS)
    free = load_watchlist_text(BUILT, "w.yaml")
    units = plan_units(index, None, free.watchers)
    assert [(u.today.day, u.symbols) for u in units] == [
        (DAYS[0], ("AAA",)), (DAYS[0], ("BBB",)), (DAYS[0], ("CCC",)), (DAYS[0], ("DDD",)),
        (DAYS[1], ("AAA", "BBB")), (DAYS[1], ("CCC",)), (DAYS[1], ("DDD",)),
        *[(d, (s,)) for d in DAYS[2:] for s in ("AAA", "BBB", "CCC", "DDD")]]
    both = units[4]  # the 10th of AAA and BBB: their one file, and the 9th's two for prior_*
    assert both.today.paths == (str(root / "AB_20260310.csv"),)
    assert both.prior is not None and both.prior.day == DAYS[0]
    assert both.prior.paths == (str(root / "AAA_20260309.csv.gz"),
                                str(root / "BBB_20260309.csv.gz"))
    ccc = units[5]  # no prior_* level: no prior tape
    assert ccc.prior is None and ccc.today.paths == (str(root / "CCC_first.csv.gz"),)
    assert units[6].today.paths == ()  # DDD: nothing to read, its watcher still has a result
    assert [dict(u.sessions)[u.today.day].day for u in units] == [u.today.day for u in units]


def test_many_watchers_of_a_symbol_are_cut_into_interleaved_units(tmp_path: Path) -> None:
    root = _built(tmp_path)
    index = TapeIndex([index_file(str(p)) for p in sorted(root.glob("AAA_*"))])
    yaml = "breakouts:\n" + "".join(
        f"  - {{id: a{n:04d}, symbol: AAA, level: {9 + n / 1000:.3f}, qty: 1}}\n"
        for n in range(3000))
    units = plan_units(index, None, load_watchlist_text(yaml, "w.yaml").watchers, workers=2)
    first = [u for u in units if u.today.day == DAYS[0]]
    rows = index.files[0].spans[(DAYS[0], "AAA")].rows
    assert len(first) == -(-3000 // max(-(-3000 * 3 // 64), rows // 100)) > 2
    assert sorted(n for u in first for n in u.positions) == list(range(3000))
    assert first[1].positions[:2] == (1, 1 + len(first))  # every len(first)-th watcher


def test_the_day_ledger_replays_each_whole_day_after_its_units(tmp_path: Path) -> None:
    from breakoutd.backtest import run_backtest
    from breakoutd.backtest.days import read_days
    from breakoutd.backtest.jobs import (
        day_results,
        enabled_in_order,
        risk_days,
        run_risk_day,
        run_unit,
    )

    root = _built(tmp_path)
    index = TapeIndex([index_file(str(p)) for p in sorted(root.iterdir())])
    risky = load_watchlist_text(RISK + BUILT, "w.yaml")
    units = plan_units(index, None, risky.watchers)
    specs = enabled_in_order(risky.watchers)
    by_day = day_results(index, units, [run_unit(u, specs) for u in units], specs)
    days = risk_days(index, by_day, risky.risk)
    alone = read_days([root])
    for (day, tape), ledger in zip(alone, days, strict=True):
        assert ledger.today.day == day and len(ledger.results) == 8
        results, replay = run_risk_day(ledger)
        prev = dict(alone).get(day - dt.timedelta(days=1))
        whole = run_backtest(tape, risky.watchers, risky.risk, prior=prev)
        assert results == whole.results
        assert replay.rejected == whole.risk.rejected and replay.halted_at == whole.risk.halted_at


def test_the_progress_counts_watcher_days_over_the_whole_job(tmp_path: Path) -> None:
    root = _built(tmp_path)
    watchers = load_watchlist_text(BUILT, "w.yaml").watchers
    seen: list[tuple[int, int]] = []
    warned: list[str] = []
    runner = ProcessRunner(2)
    try:
        results = run_backtest_jobs(runner, [root], watchers, warn=warned.append,
                                    progress=lambda done, total: seen.append((done, total)))
    finally:
        runner.close()
    assert [r.day for r in results] == list(DAYS)
    assert {total for _, total in seen} == {8 * 4}
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
    assert seen[-1] == (32, 32) and len(seen) == 15  # one step per unit
    assert warned[0] == "2026-03-09: warning: DDD@7.00: no tape has DDD; its result is only " \
                        "that nothing traded"


def test_jobs_must_be_a_positive_number(capfd: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["backtest", "--synthetic", "1", "--watchlist", "w.yaml", "--jobs", "0"])
    assert "'0' is not a number of processes (1 or more)" in capfd.readouterr().err


def _scaled(item: int, shared: dict[str, int]) -> tuple[int, int]:
    return item * shared["factor"], len(shared)


def test_what_a_run_shares_reaches_every_item_and_its_file_goes_with_the_runner() -> None:
    import tempfile

    before = set(Path(tempfile.gettempdir()).glob("breakoutd-jobs-*"))
    runner = ProcessRunner(2)
    try:
        big = {"factor": 3, **{f"k{n}": n for n in range(10_000)}}
        assert runner.run_shared(_scaled, list(range(40)), big, first=range(39, -1, -1)) \
            == [(3 * n, 10_001) for n in range(40)]
        assert runner.run_shared(_scaled, [1, 2], {"factor": -1}) == [(-1, 1), (-2, 1)]
        made = set(Path(tempfile.gettempdir()).glob("breakoutd-jobs-*")) - before
        assert len(made) == 1 and len(list(next(iter(made)).iterdir())) == 2
    finally:
        runner.close()
    assert set(Path(tempfile.gettempdir()).glob("breakoutd-jobs-*")) == before


def test_a_temporary_directory_it_cannot_write_is_named_as_the_jobs_own(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tempfile

    from breakoutd.backtest import BacktestError

    runner = ProcessRunner(2)
    try:
        assert runner.run(abs, [-1, -2]) == [1, 2]  # the workers are up
        (tmp_path / "a-file").write_text("")
        monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "a-file"))
        with pytest.raises(BacktestError) as caught:
            runner.run_shared(_scaled, [1], {"factor": 2})
    finally:
        monkeypatch.undo()
        runner.close()
    assert str(caught.value).startswith(
        f"--jobs: cannot write the watchers for the workers in {tmp_path / 'a-file'}")
    assert str(caught.value).endswith("(TMPDIR sets where)")
