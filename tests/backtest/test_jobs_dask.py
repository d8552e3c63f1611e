"""``breakoutd backtest --dask ADDRESS``: the same bytes as one process, on a local cluster.

Two worker processes on loopback, started once for the module; the units
travel to them as they would to the workers of another machine.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from breakoutd.cli.main import main
from tests.backtest.test_jobs import BUILT, RISK, TAPES, _built, _run

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        yield cluster.scheduler_address


def test_dask_gives_the_bytes_of_one_process(tmp_path: Path, scheduler: str,
                                             capfd: pytest.CaptureFixture[str]) -> None:
    root = _built(tmp_path)
    (tmp_path / "w.yaml").write_text(RISK + BUILT)
    argv = ["backtest", "--tape", str(root), "--watchlist", str(tmp_path / "w.yaml")]
    one = _run(capfd, *argv)
    assert one[0] == 0 and "risk_max_positions" in one[1] and "10.71 prior_high" in one[1]
    assert _run(capfd, *argv, "--dask", scheduler) == one
    if TAPES.exists():  # the recorded days too, as JSON
        recorded = ["backtest", "--tape", str(TAPES), "--watchlist", str(tmp_path / "w.yaml"),
                    "--json"]
        (tmp_path / "w.yaml").write_text("breakouts:\n  - {symbol: SPY, level: prior_high, "
                                         "qty: 100}\n  - {symbol: BAC, level: 13.85, qty: 100}\n")
        one = _run(capfd, *recorded)
        assert one[0] == 0 and one[1].count("\n") == 6
        assert _run(capfd, *recorded, "--dask", scheduler) == one


def test_a_bad_tape_on_the_cluster_is_named_as_one_process_names_it(
        tmp_path: Path, scheduler: str, capfd: pytest.CaptureFixture[str]) -> None:
    root = _built(tmp_path)
    bad = root / "AB_20260310.csv"
    bad.write_text(bad.read_text().replace(",AAA,", ",AAA,x", 1))
    (tmp_path / "w.yaml").write_text(BUILT)
    argv = ["backtest", "--tape", str(root), "--watchlist", str(tmp_path / "w.yaml")]
    one = _run(capfd, *argv)
    assert one[0] == 1 and one[2].startswith(f"breakoutd backtest: {bad}:2: ")
    assert _run(capfd, *argv, "--dask", scheduler) == one


def test_without_distributed_dask_says_what_to_install(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capfd: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # import fails as when not installed
    (tmp_path / "w.yaml").write_text(BUILT)
    code = main(["backtest", "--tape", str(tmp_path), "--watchlist", str(tmp_path / "w.yaml"),
                 "--dask", "tcp://127.0.0.1:8786"])
    assert code == 1
    assert capfd.readouterr().err == ("breakoutd backtest: --dask needs dask.distributed: "
                                      "pip install 'breakoutd[dask]'\n")
