"""The report as a terminal table and as JSON."""

from __future__ import annotations

from collections.abc import Sequence

from breakoutd.backtest.report import iso_time
from breakoutd.core.prices import MICROS_PER_DOLLAR, format_price, to_float
from breakoutd.report.stats import GROUPS, Summary, grouped, summarize
from breakoutd.report.trades import Trade


def usd(micros: float) -> str:
    """Dollars with cents and thousands separators."""
    sign = "-" if micros < 0 else ""
    return f"{sign}{abs(micros) / MICROS_PER_DOLLAR:,.2f}"


def _r(value: float | None) -> str:
    return f"{value:+.2f}R" if value is not None else "-"


def _pct(value: float | None) -> str:
    return f"{value * 100:.1f}%" if value is not None else "-"


def _pf(value: float | None) -> str:
    return f"{value:.2f}" if value is not None else "-"


def _columns(head: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(x) for x in col) for col in zip(head, *rows, strict=True)]
    return ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
            for line in [head, *rows]]


def _trade_row(t: Trade) -> list[str]:
    return [
        t.day, t.watcher_id, t.symbol, t.kind, iso_time(t.entry_at)[11:19],
        format_price(t.entry_price), str(t.shares),
        iso_time(t.exit_at)[11:19] if t.exit_at is not None else "-",
        format_price(t.exit_price) if t.exit_price is not None else "-",
        _r(t.r), usd(t.pnl), t.exit_reason,
    ]


SUMMARY_HEAD = ["", "trades", "win rate", "avg R", "expectancy", "profit factor", "net",
                "max DD", "max DD R"]


def _summary_row(name: str, s: Summary) -> list[str]:
    return [name, str(s.trades), _pct(s.win_rate), _r(s.avg_r),
            usd(s.expectancy) if s.expectancy is not None else "-", _pf(s.profit_factor),
            usd(s.net), usd(s.max_drawdown), f"{s.max_drawdown_r:.2f}R"]


def table(trades: Sequence[Trade]) -> str:
    """Every trade, then the totals overall, by day, by symbol and by preset."""
    head = ["day", "watcher", "symbol", "kind", "entry", "price", "shares", "exit", "price",
            "R", "P&L", "exit reason"]
    lines = _columns(head, [_trade_row(t) for t in trades]) if trades else ["no trades"]
    rows = [_summary_row("total", summarize(trades))]
    for name, key in GROUPS.items():
        rows.extend(_summary_row(f"{name} {k}", s) for k, s in grouped(trades, key).items())
    lines += ["", *_columns(SUMMARY_HEAD, rows), "",
              "P&L after commissions in USD; R = P&L / ((entry - initial stop) x shares)"]
    return "\n".join(lines)


def summary_json(s: Summary) -> dict[str, object]:
    """A summary's figures, money in USD."""
    return {
        "trades": s.trades, "wins": s.wins, "losses": s.losses,
        "win_rate": s.win_rate, "avg_r": s.avg_r,
        "expectancy_usd": s.expectancy / MICROS_PER_DOLLAR if s.expectancy is not None else None,
        "profit_factor": s.profit_factor, "net_usd": to_float(s.net),
        "gross_profit_usd": to_float(s.gross_profit), "gross_loss_usd": to_float(s.gross_loss),
        "commissions_usd": to_float(s.commissions),
        "max_drawdown_usd": to_float(s.max_drawdown), "max_drawdown_r": s.max_drawdown_r,
    }


def trade_json(t: Trade) -> dict[str, object]:
    """One trade: readable fields, and the exact integers (``*_micros``, ``*_ns``) to rebuild it."""
    return {
        "day": t.day, "watcher": t.watcher_id, "symbol": t.symbol, "kind": t.kind,
        "preset": t.preset, "order_ref": t.order_ref,
        "entry_time": iso_time(t.entry_at), "entry_price": to_float(t.entry_price),
        "shares": t.shares,
        "exit_time": iso_time(t.exit_at) if t.exit_at is not None else None,
        "exit_price": to_float(t.exit_price) if t.exit_price is not None else None,
        "exit_reason": t.exit_reason, "r": t.r, "pnl_usd": to_float(t.pnl),
        "commissions_usd": to_float(t.commissions),
        "level_micros": t.level, "trigger_ns": t.trigger_at, "entry_ns": t.entry_at,
        "entry_micros": t.entry_price, "exit_ns": t.exit_at, "exit_micros": t.exit_price,
        "stop_micros": t.stop, "pnl_micros": t.pnl, "commissions_micros": t.commissions,
        "open_qty": t.open_qty,
        "fills": [{"at_ns": f.at, "time": iso_time(f.at), "side": f.side, "role": f.role,
                   "rung": f.rung, "qty": f.qty, "price_micros": f.price, "reason": f.reason,
                   "price": to_float(f.price)} for f in t.fills],
        "stop_moves": [{"at_ns": at, "time": iso_time(at), "stop_micros": stop,
                        "stop": to_float(stop)} for at, stop in t.stops],
    }


def report_json(trades: Sequence[Trade]) -> dict[str, object]:
    """The whole report: trades, the totals and the groups."""
    return {
        "trades": [trade_json(t) for t in trades],
        "total": summary_json(summarize(trades)),
        **{f"by_{name}": {k: summary_json(s) for k, s in grouped(trades, key).items()}
           for name, key in GROUPS.items()},
    }
