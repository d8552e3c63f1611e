"""The top-level ``scan:`` block: the market scanner's schedule, filters and template.

Shape (phase one) reads the block and its ``template`` like a breakout
without a symbol; phase two resolves the template with the presets as a
breakout is resolved (a placeholder symbol stands for the candidates), so
every rule of a breakout holds for every scanned watcher. The keys are in
docs/watchlists.md, "The market scanner".
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from breakoutd.config.breakouts import FileLayers, resolve_breakout
from breakoutd.config.codec import spec_from_json, spec_to_json
from breakoutd.config.errors import Origin
from breakoutd.config.fields import (
    Invalid,
    Located,
    Problems,
    read_clock,
    read_count,
    read_items,
    read_number,
    read_positive_decimal,
    read_positive_price,
    read_text,
)
from breakoutd.config.params_check import clock_text
from breakoutd.config.safe_yaml import Node, Scalar
from breakoutd.config.schema import BREAKOUT_KEYS, Section, Spec, read_section
from breakoutd.core.params import LevelName
from breakoutd.core.prices import format_price, to_micros
from breakoutd.core.scan import DEFAULT_ROWS, ScanSettings

MAX_ROWS = 50  # IB's scanner answers at most 50 rows
PLACEHOLDER = "SCAN"  # the template's symbol while it is checked
EARLIEST, LATEST = 4 * 3600, 20 * 3600  # the scanner has data from the pre-market to the close
_CODE = re.compile(r"[A-Z][A-Z0-9_]{0,59}")
# A candidate's symbol, id and prices come from the market, so the template has none.
_NOT_IN_TEMPLATE = ("id", "symbol", "tp", "sl", "enabled")


def _read_times(node: Node, at: Origin, problems: Problems) -> tuple[Located[int], ...]:
    items = (node,) if isinstance(node, Scalar) else read_items(node, "times")
    if not items:
        raise Invalid("expected at least one time HH:MM")
    out: list[Located[int]] = []
    failed = False
    for i, item in enumerate(items):
        item_at = at if isinstance(node, Scalar) else at.child(i, item.line)
        try:
            seconds = read_clock(item)
        except Invalid as exc:
            problems.add(item_at.problem(exc.message))
            failed = True
            continue
        if not EARLIEST <= seconds <= LATEST:
            problems.add(item_at.problem(
                f"{clock_text(seconds)} is outside the trading day (04:00 to 20:00)"))
            failed = True
        elif any(o.value == seconds for o in out):
            problems.add(item_at.problem(f"{clock_text(seconds)} is listed twice"))
            failed = True
        out.append(Located(seconds, clock_text(seconds), item_at))
    if failed:
        raise Invalid()
    return tuple(out)


def _read_code(node: Node) -> str:
    text = read_text(node)
    if not _CODE.fullmatch(text):
        upper = f" (did you mean {text.upper()!r}?)" if _CODE.fullmatch(text.upper()) else ""
        raise Invalid(f"{text!r} is not an IB scan code such as TOP_PERC_GAIN, HOT_BY_VOLUME "
                      f"or MOST_ACTIVE{upper}")
    return text


def _read_rows(node: Node) -> int:
    rows = read_count(node)
    if rows > MAX_ROWS:
        raise Invalid(f"rows {rows}: the broker's scanner answers at most {MAX_ROWS}")
    return rows


def _simple(read: Any) -> Any:
    return lambda node, at, problems: read(node)


TEMPLATE_KEYS: Mapping[str, Spec] = {
    k: v for k, v in BREAKOUT_KEYS.items() if k not in _NOT_IN_TEMPLATE}


def _read_template(node: Node, at: Origin, problems: Problems) -> Section:
    section = read_section(node, at, TEMPLATE_KEYS, problems, "scan.template")
    if section.broken:
        raise Invalid()
    return section


SCAN_KEYS: Mapping[str, Spec] = {
    "at": Spec(_read_times),
    "code": Spec(_simple(_read_code)),
    "rows": Spec(_simple(_read_rows)),
    "top": Spec(_simple(read_count)),
    "min_price": Spec(_simple(read_positive_price), nullable=True),
    "max_price": Spec(_simple(read_positive_price), nullable=True),
    "min_gap_pct": Spec(_simple(read_number), nullable=True),
    "min_volume": Spec(_simple(read_count), nullable=True),
    "max_spread_pct": Spec(_simple(read_positive_decimal), nullable=True),
    "template": Spec(_read_template),
}


def read_scan(node: Node, at: Origin, problems: Problems) -> Section:
    """Phase one of ``scan:``."""
    return read_section(node, at, SCAN_KEYS, problems, "scan")


def _where(section: Section) -> str:
    return f"{section.at.file}:{section.at.line}"


def _check_block(block: Section, problems: Problems) -> bool:
    ok = True
    for key in ("at", "template"):
        if key not in block.values and key not in block.bad:
            problems.add(block.at.problem(f"{key} is required" + (" (the times to scan, HH:MM)" if key == "at" else " (the watcher each candidate becomes)")))
            ok = False
    low, high = block.values.get("min_price"), block.values.get("max_price")
    if low is not None and high is not None and low.value is not None \
            and high.value is not None and low.value >= high.value:
        problems.add(high.at.problem(f"max_price {high.text} must be above min_price {low.text}"))
        ok = False
    top, rows = block.values.get("top"), block.values.get("rows")
    if top is not None and top.value > (rows.value if rows is not None else DEFAULT_ROWS):
        problems.add(top.at.problem(
            f"top {top.text} is more than the {rows.text if rows else DEFAULT_ROWS} "
            "rows asked of the scanner"))
        ok = False
    return ok and not block.bad and not block.broken


def _template_spec(template: Section, presets: Mapping[str, Section], problems: Problems
                   ) -> Any:
    level = template.values.get("level")
    if level is not None and not isinstance(level.value, LevelName):
        names = " | ".join(n.value for n in LevelName)
        problems.add(level.at.problem(
            f"{level.text}: a scanned symbol's level is taken from its market: one of {names}"))
        return None
    if level is None and "level" not in template.bad:
        problems.add(template.at.problem("level is required (a named level such as "
                                         "premarket_high)"))
        return None
    section = Section(template.at, dict(template.values), set(template.bad), template.broken)
    section.values["symbol"] = Located(PLACEHOLDER, PLACEHOLDER, template.at)
    return resolve_breakout(section, FileLayers(None, presets), problems)


def resolve_scan(found: Sequence[Section], presets: Mapping[str, Section],
                 problems: Problems) -> ScanSettings | None:
    """Phase two of ``scan:`` (one file may hold it); None when absent or wrong."""
    for extra in found[1:]:
        problems.add(extra.at.problem(
            f"scan is already set at {_where(found[0])}; set the scanner in one file"))
    if not found or found[0].broken:
        return None
    block = found[0]
    ok = _check_block(block, problems)
    written = block.values.get("template")
    template = _template_spec(written.value, presets, problems) if written is not None else None
    if not ok or template is None:
        return None
    values = {k: v.value for k, v in block.values.items() if k not in ("at", "template")}
    times = tuple(sorted(t.value for t in block.values["at"].value))
    return ScanSettings(times=times, template=template, **values)


def scan_to_json(scan: ScanSettings) -> dict[str, Any]:
    """The block as JSON (for the digest and plans)."""
    def price(v: int | None) -> str | None:
        return None if v is None else format_price(v)
    return {
        "at": [clock_text(t) for t in scan.times], "code": scan.code, "rows": scan.rows,
        "top": scan.top, "min_price": price(scan.min_price), "max_price": price(scan.max_price),
        "min_gap_pct": None if scan.min_gap_pct is None else str(scan.min_gap_pct),
        "min_volume": scan.min_volume,
        "max_spread_pct": None if scan.max_spread_pct is None else str(scan.max_spread_pct),
        "template": spec_to_json(scan.template, with_source=False),
    }


def scan_from_json(d: dict[str, Any]) -> ScanSettings:
    """The inverse of :func:`scan_to_json` (snapshots)."""
    def price(v: str | None) -> int | None:
        return None if v is None else to_micros(Decimal(v))

    def times(texts: list[str]) -> tuple[int, ...]:
        return tuple(sum(int(p) * m for p, m in zip(t.split(":"), (3600, 60, 1), strict=False))
                     for t in texts)
    return ScanSettings(
        times=times(d["at"]), template=spec_from_json(d["template"]), code=str(d["code"]),
        rows=int(d["rows"]), top=int(d["top"]), min_price=price(d["min_price"]),
        max_price=price(d["max_price"]),
        min_gap_pct=None if d["min_gap_pct"] is None else Decimal(d["min_gap_pct"]),
        min_volume=None if d["min_volume"] is None else int(d["min_volume"]),
        max_spread_pct=None if d["max_spread_pct"] is None else Decimal(d["max_spread_pct"]))


def describe_scan(scan: ScanSettings) -> str:
    """One line: ``TOP_PERC_GAIN at 08:45, 09:15: top 3 of 20; price 2.00-20.00; ...``."""
    parts = [f"{scan.code} at {', '.join(clock_text(t) for t in scan.times)}: "
             f"top {scan.top} of {scan.rows}"]
    if scan.min_price is not None or scan.max_price is not None:
        low = format_price(scan.min_price) if scan.min_price is not None else "0"
        high = format_price(scan.max_price) if scan.max_price is not None else "any"
        parts.append(f"price {low}-{high}")
    if scan.min_gap_pct is not None:
        parts.append(f"gap >= {scan.min_gap_pct}%")
    if scan.min_volume is not None:
        parts.append(f"volume >= {scan.min_volume}")
    if scan.max_spread_pct is not None:
        parts.append(f"spread <= {scan.max_spread_pct}%")
    return "; ".join(parts)
