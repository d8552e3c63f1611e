"""``breakoutctl scan``: the scan once against the gateway, the table printed, nothing armed."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path

import pytest

from breakoutd.cli.ctl import build_parser, main
from breakoutd.cli.ctl_scan_run import run_scan_command
from breakoutd.config import load_watchlists
from breakoutd.sim import Market, SimGateway
from tests.daemon.test_daemon_scan import WATCHLIST, market
from tests.sim.simkit import DAY


def _lists(tmp_path: Path) -> Path:
    lists = tmp_path / "watchlists"
    lists.mkdir()
    (lists / "today.yaml").write_text(WATCHLIST)
    return lists


def _scan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *extra: str) -> int:
    lists = _lists(tmp_path)
    config = load_watchlists([lists])
    assert config.scan is not None

    async def body() -> int:
        gw = SimGateway(Market(market()), port=0, start=dt.time(9, 21), day=DAY,
                        manual_clock=True)
        await gw.start()
        try:
            monkeypatch.setenv("IB_PORT", str(gw.port))
            args = build_parser().parse_args(["scan", str(lists), "--var",
                                              str(tmp_path / "var"), *extra])
            return await run_scan_command(args, config.scan, {"MINE"})  # type: ignore[arg-type]
        finally:
            await gw.stop()

    return asyncio.run(asyncio.wait_for(body(), 60))


def test_scan_prints_every_candidate_with_its_verdict_and_arms_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _scan(tmp_path, monkeypatch)
    assert code == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["RANK", "SYMBOL", "LAST", "PRIOR", "GAP%", "VOLUME", "SPREAD%",
                              "SCORE", "VERDICT"]
    table = {line.split()[1]: line.split() for line in out[1:-1]}
    assert table["GAPA"][2:] == ["12.40", "10.00", "24.00", "110000", "0.16", "28.03", "pick"]
    assert table["GAPB"][-1] == "pick"
    assert table["FLAT"][-1] == "gap_below" and table["MINE"][-1] == "on_watchlist"
    assert table["NOREF"][3] == "-" and table["NOREF"][-1] == "no_prior_close"
    assert out[-1] == ("TOP_PERC_GAIN: 6 candidates, 2 to arm (nothing armed: breakoutctl "
                       "scan only looks)")
    assert not (tmp_path / "var").exists()  # nothing journalled, nothing armed


def test_scan_json_and_a_day_s_armed_picks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    journal = tmp_path / "var" / "journal" / DAY.isoformat()
    journal.mkdir(parents=True)
    (journal / "events.jsonl").write_text(json.dumps(
        {"event": "ScanResult", "at": 1, "code": "TOP_PERC_GAIN", "trigger": "schedule",
         "candidates": [], "armed": ["scan:GAPA"]}) + "\n")
    code = _scan(tmp_path, monkeypatch, "--json")
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["event"], result["trigger"], result["armed"]) == (
        "ScanResult", "breakoutctl", ["scan:GAPB"])
    outcomes = {c["symbol"]: c["outcome"] for c in result["candidates"]}
    assert outcomes["GAPA"] == "armed_before"


def test_scan_without_a_scan_block_or_a_gateway_says_so(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "plain.yaml").write_text("breakouts:\n  - {symbol: A, level: 5, qty: 1}\n")
    assert main(["scan", str(tmp_path / "plain.yaml")]) == 1
    assert "no scan: block" in capsys.readouterr().err
    monkeypatch.setenv("IB_PORT", "1")  # nothing listens there
    assert main(["scan", str(_lists(tmp_path))]) == 1
    assert "cannot reach the gateway at 127.0.0.1:1" in capsys.readouterr().err


def test_check_and_plan_show_the_scan_block(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    lists = _lists(tmp_path)
    assert main(["check", str(lists)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1:] == [
        "scan: TOP_PERC_GAIN at 09:20, 09:25: top 2 of 10; price 2.00-any; gap >= 10%",
        "  each pick: SYMBOL level premarket_high +0.01 qty 10 rth"]
    journal = tmp_path / "var" / "journal" / DAY.isoformat()
    journal.mkdir(parents=True)
    (journal / "events.jsonl").write_text(json.dumps(
        {"event": "ScanResult", "at": 1, "code": "TOP_PERC_GAIN", "trigger": "schedule",
         "candidates": [], "armed": ["scan:GAPA", "scan:GAPB"]}) + "\n")
    assert main(["plan", "--var", str(tmp_path / "var"), str(lists)]) == 0
    out = capsys.readouterr().out
    assert f"  scanned on {DAY.isoformat()}: scan:GAPA, scan:GAPB\n" in out
