"""``--html DIR``: one self-contained page (no script, no external file) with the pictures.

The pictures are drawn with matplotlib (Agg, no display needed) and inlined
as base64 PNG, so the page works offline and can be mailed as one file:
the equity curve, the drawdown, the R distribution, and per trade its
minute bars with the level, the entry, the exits and the stop's moves.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from breakoutd.backtest.report import iso_time
from breakoutd.backtest.series import BarSeries
from breakoutd.core.bars import NS
from breakoutd.core.prices import format_price, to_float
from breakoutd.report.render import SUMMARY_HEAD, _summary_row, _trade_row
from breakoutd.report.stats import GROUPS, grouped, in_close_order, summarize
from breakoutd.report.trades import Trade

MinuteBars = Callable[[Trade], BarSeries | None]
PAGE = "report.html"
MARGIN_NS = 15 * 60 * NS  # minutes of bars shown before the entry and after the exit

_STYLE = """
body{font-family:sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;font-size:13px;margin-bottom:1em}
td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}
th{background:#eee} td:first-child,td:nth-child(2){text-align:left}
img{max-width:100%} .pics img{width:32%;min-width:300px}
"""


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    _pyplot().close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def equity_png(trades: Sequence[Trade]) -> str:
    """The cumulative P&L after commissions, trade by trade in close order."""
    plt = _pyplot()
    ordered = in_close_order(trades)
    total, ys = 0, [0.0]
    for t in ordered:
        total += t.pnl
        ys.append(to_float(total))
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.plot(range(len(ys)), ys, color="#1f77b4", linewidth=2, marker="o", markersize=3)
    ax.axhline(0, color="#888", linewidth=0.8)
    ax.set_title("Equity curve (USD, after commissions)")
    ax.set_xlabel("trade (in close order)")
    ax.grid(alpha=0.3)
    return _png(fig)


def drawdown_png(trades: Sequence[Trade]) -> str:
    """How far the equity curve is below its running peak after each trade."""
    plt = _pyplot()
    total = peak = 0
    ys = [0.0]
    for t in in_close_order(trades):
        total += t.pnl
        peak = max(peak, total)
        ys.append(-to_float(peak - total))
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.fill_between(range(len(ys)), ys, 0, color="#d62728", alpha=0.5)
    ax.plot(range(len(ys)), ys, color="#d62728", linewidth=1)
    ax.set_title("Drawdown (USD)")
    ax.set_xlabel("trade (in close order)")
    ax.grid(alpha=0.3)
    return _png(fig)


def r_png(trades: Sequence[Trade]) -> str:
    """The distribution of R multiples."""
    plt = _pyplot()
    rs = [t.r for t in trades if t.r is not None]
    fig, ax = plt.subplots(figsize=(6, 3.2))
    if rs:
        ax.hist(rs, bins=max(5, min(30, len(rs))), color="#2ca02c", edgecolor="#145214")
    ax.axvline(0, color="#888", linewidth=0.8)
    ax.set_title(f"R distribution ({len(rs)} trades with a stop)")
    ax.set_xlabel("R multiple")
    return _png(fig)


def trade_png(t: Trade, bars: BarSeries) -> str | None:
    """The trade's minute bars, the level, the entry, the exits and the stop's path."""
    lo = t.entry_at - MARGIN_NS
    hi = (t.exit_at or t.entry_at) + MARGIN_NS
    idx = [i for i in range(len(bars)) if lo <= int(bars.start[i]) <= hi]
    if not idx:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 3.4))
    x0 = int(bars.start[idx[0]])

    def minute(ns: int) -> float:
        return (ns - x0) / (60 * NS)

    for i in idx:
        o, c = to_float(int(bars.open[i])), to_float(int(bars.close[i]))
        x = minute(int(bars.start[i])) + 0.5
        color = "#2ca02c" if c >= o else "#d62728"
        ax.vlines(x, to_float(int(bars.low[i])), to_float(int(bars.high[i])), color=color,
                  linewidth=0.8)
        ax.bar(x, abs(c - o) or 0.002, bottom=min(o, c), width=0.7, color=color)
    if t.level is not None:
        ax.axhline(to_float(t.level), color="#555", linestyle="--", linewidth=1, label="level")
    ax.plot([minute(t.entry_at)], [to_float(t.entry_price)], marker="^", color="#1f77b4",
            markersize=10, linestyle="", label="entry")
    sells = [f for f in t.fills if f.side != "BOT"]
    if sells:
        ax.plot([minute(f.at) for f in sells], [to_float(f.price) for f in sells], marker="v",
                color="#9467bd", markersize=10, linestyle="", label="exits")
    if t.stop is not None:
        path = [(t.entry_at, t.stop), *t.stops, ((t.exit_at or hi), (t.stops or [(0, t.stop)])[-1][1])]
        ax.step([minute(a) for a, _ in path], [to_float(s) for _, s in path], where="post",
                color="#d62728", linewidth=1.2, label="stop")
    ax.set_title(f"{t.watcher_id} {t.symbol} {t.day}: {t.exit_reason}")
    ax.set_xlabel(f"minutes from {iso_time(x0)[11:16]}")
    ax.legend(fontsize=8, loc="best")
    ax.grid(alpha=0.3)
    return _png(fig)


def _html_table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    cells = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>"
                   for r in rows)
    return f"<table><tr>{cells}</tr>{body}</table>"


def write_html(trades: Sequence[Trade], out_dir: Path, minute_bars: MinuteBars,
               title: str = "breakoutd report") -> Path:
    """Write ``DIR/report.html`` and return its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = [_summary_row("total", summarize(trades))]
    for name, key in GROUPS.items():
        rows.extend(_summary_row(f"{name} {k}", s) for k, s in grouped(trades, key).items())
    head = ["day", "watcher", "symbol", "kind", "entry", "price", "shares", "exit", "price",
            "R", "P&L", "exit reason"]
    parts = [
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
        f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>",
        _html_table(SUMMARY_HEAD, rows),
        "<div class='pics'>",
        f"<img id='equity' alt='equity curve' src='{equity_png(trades)}'>",
        f"<img id='drawdown' alt='drawdown' src='{drawdown_png(trades)}'>",
        f"<img id='r-distribution' alt='R distribution' src='{r_png(trades)}'>",
        "</div><h2>Trades</h2>", _html_table(head, [_trade_row(t) for t in trades]),
    ]
    for t in trades:
        bars = minute_bars(t)
        pic = trade_png(t, bars) if bars is not None else None
        stops = ", ".join(f"{iso_time(a)[11:19]} {format_price(s)}" for a, s in t.stops)
        parts.append(f"<h3>{html.escape(t.watcher_id)} ({html.escape(t.day)})</h3>")
        if stops:
            parts.append(f"<p>stop moves: {html.escape(stops)}</p>")
        parts.append(f"<img alt='minute bars of {html.escape(t.watcher_id)}' src='{pic}'>"
                     if pic else "<p>no minute bars for this trade (no tape given)</p>")
    parts.append("</body></html>")
    path = out_dir / PAGE
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
