"""The scanner's filters and score, on hand-made candidates."""

from __future__ import annotations

from decimal import Decimal

from breakoutd.config import load_watchlist_text
from breakoutd.core.params import WatcherSpec
from breakoutd.core.prices import to_micros
from breakoutd.core.refs import parse_ref, watcher_of
from breakoutd.core.scan import CandidateData, ScanSettings, evaluate, scanned_spec, score, to_arm

TEMPLATE = """\
scan:
  at: "09:25"
  top: 2
  min_price: 2
  max_price: 20
  min_gap_pct: 5
  min_volume: 100000
  max_spread_pct: 1
  template:
    level: premarket_high
    qty: 100
    sessions: [rth]
"""


def settings() -> ScanSettings:
    scan = load_watchlist_text(TEMPLATE, "w.yaml").scan
    assert scan is not None
    return scan


def c(symbol: str, rank: int, last: str, prior: str | None = "10.00", volume: int = 500_000,
      bid: str | None = None, ask: str | None = None) -> CandidateData:
    b = to_micros(Decimal(bid)) if bid else to_micros(Decimal(last)) - 10_000
    a = to_micros(Decimal(ask)) if ask else to_micros(Decimal(last)) + 10_000
    return CandidateData(symbol, rank, to_micros(Decimal(last)),
                         to_micros(Decimal(prior)) if prior else None, volume, b, a)


def test_each_filter_names_its_reason_and_the_best_scores_are_picked() -> None:
    found = [
        c("SMALL", 0, "1.50", "1.00"),            # a 50% gap under min_price
        c("BIG", 1, "25.00", "20.00"),            # above max_price
        c("NOREF", 2, "12.00", None),             # no prior close
        c("FLAT", 3, "10.20"),                    # a 2% gap
        c("THIN", 4, "12.00", volume=50_000),     # too few shares
        c("WIDE", 5, "12.00", bid="11.80", ask="12.20"),  # a 3.3% spread
        c("MINE", 6, "12.00"),                    # an operator's watcher trades it
        c("AAA", 7, "11.00", volume=200_000),     # gap 10%, $2.2M: score 14.83
        c("BBB", 8, "13.00", volume=1_000_000),   # gap 30%, $13M: score 108.17
        c("CCC", 9, "12.00", volume=300_000),     # gap 20%, $3.6M: score 37.95
    ]
    verdicts = evaluate(settings(), found, armed_today={"CCC"}, watched={"MINE"})
    by = {v.symbol: v for v in verdicts}
    assert {s: by[s].reason for s in ("SMALL", "BIG", "NOREF", "FLAT", "THIN", "WIDE", "MINE")} == {
        "SMALL": "price_below", "BIG": "price_above", "NOREF": "no_prior_close",
        "FLAT": "gap_below", "THIN": "volume_below", "WIDE": "spread_above",
        "MINE": "on_watchlist"}
    assert [(v.symbol, v.outcome, v.score) for v in verdicts[:3]] == [
        ("BBB", "armed", Decimal("108.17")), ("CCC", "armed_before", Decimal("37.95")),
        ("AAA", "below_top", Decimal("14.83"))]
    assert by["BBB"].gap_pct == Decimal("30.00") and by["WIDE"].spread_pct == Decimal("3.33")
    assert to_arm(verdicts) == ("BBB",)  # CCC: an earlier scan of the day armed it


def test_ties_go_to_the_brokers_rank_and_a_missing_quote_counts_only_with_a_spread_limit(
) -> None:
    s = settings()
    same = [c("ZZZ", 0, "12.00"), c("AAA", 1, "12.00")]
    assert [v.symbol for v in evaluate(s, same)][:2] == ["ZZZ", "AAA"]
    unquoted = CandidateData("NOQ", 0, 12_000_000, 10_000_000, 500_000, None, None)
    assert evaluate(s, [unquoted])[0].reason == "no_quote"
    loose = ScanSettings(times=s.times, template=s.template)
    assert evaluate(loose, [unquoted])[0].outcome == "armed"
    assert score(Decimal("20.00"), 10_000_000, 0) == Decimal("0.00")


def test_a_scanned_watcher_has_the_stable_id_scan_symbol_and_its_order_ref_parses_back() -> None:
    template: WatcherSpec = settings().template
    spec = scanned_spec(template, "GAPGO")
    assert (spec.id, spec.symbol, spec.level_name, spec.qty) == (
        "scan:GAPGO", "GAPGO", template.level_name, 100)
    ref = f"bo:20261203:rth:{spec.id}"
    assert watcher_of(parse_ref(ref + ":tp1").base) == "scan:GAPGO"  # type: ignore[union-attr]
    assert parse_ref(ref + ":sl") == (ref, "stop", 0)
    assert parse_ref("bo:20261203:rth:scan:sl") == ("bo:20261203:rth:scan", "stop", 0)
