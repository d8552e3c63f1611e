"""Backtests on the recorded tapes agree with an independent reading of strategy.md."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pytest

from breakoutd.backtest import run_backtest
from breakoutd.backtest.report import json_lines
from breakoutd.config import load_watchlist_text
from breakoutd.tape import read_tape
from tests.backtest.reference import NY, Reference, load_rows

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
# The recorded days, and the holdout's shifted-price and blank-quote variants
# (sub-dollar, $1-$7 regimes, no quotes before 10:00).
TAPES = sorted((DATA / "tapes").glob("*.csv.gz")) + [
    DATA / "holdout" / name for name in (
        "LOWB_20131010.csv.gz", "MIDA_20131008.csv.gz", "LOWI_20131011.csv.gz",
        "PENY_20131011.csv.gz", "NOQI_20131008.csv.gz", "IBM_20131010.csv.gz")
]

pytestmark = pytest.mark.realdata


def _levels(rows: list[dict[str, object]]) -> list[Decimal]:
    """Levels across the day's range: some break early, some late, some never."""
    closes = sorted({r["close"] for r in rows if r["close"] is not None})  # type: ignore[type-var]
    picks = [closes[int(len(closes) * q)] for q in (0.5, 0.7, 0.85, 0.93, 0.97)]
    tick = Decimal("0.01") if closes[0] >= 1 else Decimal("0.0001")  # type: ignore[operator]
    picks.append(closes[-1] + tick)  # never reached by a close
    return sorted(set(picks))  # type: ignore[arg-type]


def _yaml(symbol: str, levels: list[Decimal]) -> str:
    lines = ["breakouts:"]
    variants = [
        "",
        "    sessions: [rth]",
        "    sessions: [rth]\n    not_before: \"10:15:30\"\n    not_after: \"14:00\"",
        "    max_bars: 25\n    sessions: [rth]",
        "    fast: false",
        "    max_chase: 0.02",
    ]
    for n, level in enumerate(levels):
        for v, extra in enumerate(variants):
            lines.append(f"  - id: w{n}v{v}\n    symbol: {symbol}\n    level: {level}\n    qty: 10")
            if extra:
                lines.append(extra)
    return "\n".join(lines) + "\n"


def _window(day: dt.date, variant: int) -> tuple[dt.datetime, dt.datetime]:
    def t(hms: str) -> dt.datetime:
        return dt.datetime.combine(day, dt.time.fromisoformat(hms), NY)
    if variant in (0, 4, 5):
        return t("04:00:00"), t("16:00:00")
    if variant == 2:
        return t("10:15:30"), t("14:00:00")
    return t("09:30:00"), t("16:00:00")


@pytest.mark.parametrize("path", TAPES, ids=lambda p: p.name)
def test_backtest_matches_the_reference_reading(path: Path) -> None:
    if not path.exists():
        pytest.skip("recorded tapes are not beside the checkout")
    rows = load_rows(path)
    ref = Reference(rows)
    tape = read_tape(path)
    symbol = next(iter(tape.symbols))
    levels = _levels(rows)
    watchlist = load_watchlist_text(_yaml(symbol, levels), "real.yaml")
    result = run_backtest(tape, watchlist.watchers)
    got = {r["id"]: r for r in map(json.loads, json_lines(result))}
    day = tape.dates()[0]
    for n, level in enumerate(levels):
        for variant in range(6):
            a, z = _window(day, variant)
            want = ref.outcome(level, a, z, max_bars=25 if variant == 3 else None,
                               fast=variant != 4,
                               max_chase=Decimal("0.02") if variant == 5 else None)
            rec = got[f"w{n}v{variant}"]
            assert {k: rec[k] for k in want} == want, (path.name, str(level), variant)


def test_spy_2013_10_07_hand_checked() -> None:
    """Checked by reading the raw rows of SPY_20131007 around the trigger."""
    path = DATA / "tapes" / "SPY_20131007.csv.gz"
    if not path.exists():
        pytest.skip("recorded tapes are not beside the checkout")
    tape = read_tape(path)
    watchlist = load_watchlist_text(HAND_YAML, "hand.yaml")
    got = [json.loads(line) for line in json_lines(run_backtest(tape, watchlist.watchers))]
    assert got == HAND_EXPECTED


HAND_YAML = """\
breakouts:
  # 10:30 minute bar closes 168.32: close rule at 10:31:00. Limit: the ask of the
  # 10:30:59 row (168.32), not of the row stamped 10:31:00 (168.31).
  - id: spy-close
    symbol: SPY
    level: 168.30
    qty: 10
    sessions: [rth]
  # Armed at 10:24:00: the 10:23 bar closes exactly at A and is not evaluated;
  # the 10:24:00 second (h 168.31 l 168.27 c 168.31, k=0, m=1.25: D 19c, S 5c)
  # fires the fast rule at 10:24:01, priced at the 10:24:00 row's ask 168.31.
  - id: spy-fast
    symbol: SPY
    level: 168.12
    qty: 10
    sessions: [rth]
    not_before: "10:24:00"
  # Never closes at 169 or above: the 5th evaluated bar (09:34) ends it.
  - id: spy-max
    symbol: SPY
    level: 169.00
    qty: 10
    sessions: [rth]
    max_bars: 5
"""
HAND_EXPECTED: list[dict[str, object]] = [
    {"id": "spy-close", "symbol": "SPY", "level": 168.3, "outcome": "entered", "kind": "close",
     "trigger_time": "2013-10-07T10:31:00-04:00", "limit": 168.32, "reason": None},
    {"id": "spy-fast", "symbol": "SPY", "level": 168.12, "outcome": "entered", "kind": "fast",
     "trigger_time": "2013-10-07T10:24:01-04:00", "limit": 168.31, "reason": None},
    {"id": "spy-max", "symbol": "SPY", "level": 169.0, "outcome": "expired", "kind": None,
     "trigger_time": None, "limit": None, "reason": "max_bars"},
]


def test_spy_2013_10_08_a_bad_print_above_the_quote_is_not_a_breakout() -> None:
    """15:03:04 printed 167.51 once (601649 shares) while the quote stayed 165.98/165.99.

    The print fires the fast rule on 167.00 at 15:03:05 (k=0, m=1.25: D 19c,
    a one-price second); the ask in force, the 15:03:04 row's 165.99, is a
    dollar below the level, so the trigger is rejected instead of buying
    there. Before the quote had to confirm the break, this entered at 165.99.
    """
    path = DATA / "tapes" / "SPY_20131008.csv.gz"
    if not path.exists():
        pytest.skip("recorded tapes are not beside the checkout")
    watchlist = load_watchlist_text(BAD_PRINT_YAML, "bad-print.yaml")
    got = [json.loads(line) for line in json_lines(run_backtest(read_tape(path), watchlist.watchers))]
    assert got == [
        {"id": "spy-bad-print", "symbol": "SPY", "level": 167.0, "outcome": "rejected",
         "kind": "fast", "trigger_time": "2013-10-08T15:03:05-04:00", "limit": None,
         "reason": "quote_below_level"},
    ]
    # The independent reading agrees.
    ref = Reference(load_rows(path))
    a = dt.datetime(2013, 10, 8, 15, 0, tzinfo=NY)
    assert ref.outcome(Decimal("167.00"), a, dt.datetime(2013, 10, 8, 16, 0, tzinfo=NY)) == {
        k: got[0][k] for k in ("outcome", "kind", "trigger_time", "limit", "reason")}


BAD_PRINT_YAML = """\
breakouts:
  - id: spy-bad-print
    symbol: SPY
    level: 167.00
    qty: 10
    sessions: [rth]
    not_before: "15:00"
"""


@pytest.mark.parametrize(("max_chase", "outcome", "reason"), [
    ("0.19", "entered", None),      # the ask 168.31 is exactly level + max_chase
    ("0.18", "rejected", "chased"),  # one tick less: the move is already gone
])
def test_spy_2013_10_07_max_chase_bounds_the_fast_entry(
        max_chase: str, outcome: str, reason: str | None) -> None:
    """spy-fast of the hand-checked day: level 168.12, priced at the ask 168.31."""
    path = DATA / "tapes" / "SPY_20131007.csv.gz"
    if not path.exists():
        pytest.skip("recorded tapes are not beside the checkout")
    text = HAND_YAML.replace('    not_before: "10:24:00"\n',
                             f'    not_before: "10:24:00"\n    max_chase: {max_chase}\n')
    watchlist = load_watchlist_text(text, "hand.yaml")
    got = {r["id"]: r for r in map(json.loads, json_lines(run_backtest(read_tape(path),
                                                                       watchlist.watchers)))}
    fast = got["spy-fast"]
    assert (fast["outcome"], fast["kind"], fast["trigger_time"], fast["reason"]) == (
        outcome, "fast", "2013-10-07T10:24:01-04:00", reason)
    assert fast["limit"] == (168.31 if outcome == "entered" else None)
