"""Plain-JSON form of the resolved model, for the digest and the snapshot.

Prices are decimal strings (``"190.00"``), other decimals normalised strings
(``"2"`` for 2.0), times whole seconds after 00:00. Decoding is strict: any
missing or mistyped field raises ``ValueError``/``KeyError``/``TypeError``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from breakoutd.core.params import (
    EntryKind,
    FastSchedule,
    LevelName,
    OnHalt,
    RiskLimits,
    Rule,
    Session,
    Slices,
    SourceRef,
    StrategyParams,
    WatcherSpec,
)
from breakoutd.core.prices import format_price, to_micros

JSON = dict[str, Any]


def _dec(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _opt_dec(value: Decimal | None) -> str | None:
    return None if value is None else _dec(value)


def _price(text: str) -> int:
    if not isinstance(text, str):
        raise TypeError(f"price {text!r} is not a string")
    return to_micros(text)


def params_to_json(p: StrategyParams) -> JSON:
    """StrategyParams as plain JSON values."""
    fast = None if p.fast is None else {
        "distance_start": _dec(p.fast.distance_start),
        "distance_end": _dec(p.fast.distance_end),
        "spread_start": _dec(p.fast.spread_start),
        "spread_end": _dec(p.fast.spread_end),
        "step": p.fast.step,
    }
    out: JSON = {
        "sessions": [s.value for s in p.sessions],
        "not_before": p.not_before,
        "not_after": p.not_after,
        "entry": p.entry.value,
        "bar_seconds": p.bar_seconds,
        "fast": fast,
        "quote_age": _dec(p.quote_age),
        "quote_warmup": _dec(p.quote_warmup),
        "max_bars": p.max_bars,
        "rth": p.rth,
        "tif": p.tif,
        "risk_usd": _opt_dec(p.risk_usd),
        "max_chase": None if p.max_chase is None else format_price(p.max_chase),
        **management_to_json(p),
    }
    out.update(_variant_to_json(p))
    return out


def _opt_price(micros: int | None) -> str | None:
    return None if micros is None else format_price(micros)


def management_to_json(p: StrategyParams) -> JSON:
    """The position-management and relative-exit parameters as plain JSON values."""
    return {
        "breakeven": _opt_dec(p.breakeven),
        "trail": _opt_price(p.trail),
        "trail_after": _opt_dec(p.trail_after),
        "exit_at": p.exit_at,
        "max_hold": p.max_hold,
        "slices": None if p.slices is None else {"count": p.slices.count,
                                                 "every": p.slices.every},
        "sl_below": _opt_price(p.sl_below),
        "tp_r": [_dec(r) for r in p.tp_r],
    }


def _management_from_json(d: JSON) -> JSON:
    """Keyword arguments of StrategyParams; a snapshot from before these keys has none."""
    slices = d.get("slices")
    return {
        "breakeven": None if d.get("breakeven") is None else Decimal(d["breakeven"]),
        "trail": None if d.get("trail") is None else _price(d["trail"]),
        "trail_after": None if d.get("trail_after") is None else Decimal(d["trail_after"]),
        "exit_at": None if d.get("exit_at") is None else int(d["exit_at"]),
        "max_hold": None if d.get("max_hold") is None else int(d["max_hold"]),
        "slices": None if slices is None else Slices(int(slices["count"]), int(slices["every"])),
        "sl_below": None if d.get("sl_below") is None else _price(d["sl_below"]),
        "tp_r": tuple(Decimal(r) for r in d.get("tp_r", ())),
    }


_VARIANT_DEFAULTS = StrategyParams()


def _variant_to_json(p: StrategyParams) -> JSON:
    """The rule-variant and named-level keys, only where they differ from the defaults.

    Written only when set, so the digest of a watchlist that uses none of them
    is what it was before they existed."""
    d = _VARIANT_DEFAULTS
    out: JSON = {}
    if p.rule is not d.rule:
        out["rule"] = p.rule.value
    if p.volume_mult != d.volume_mult:
        out["volume_mult"] = _dec(p.volume_mult)
    if p.volume_lookback != d.volume_lookback:
        out["volume_lookback"] = p.volume_lookback
    if p.retest_within != d.retest_within:
        out["retest_within"] = format_price(p.retest_within)
    if p.opening_range != d.opening_range:
        out["opening_range"] = p.opening_range
    if p.level_offset != d.level_offset:
        out["level_offset"] = format_price(p.level_offset)
    return out


def params_from_json(d: JSON) -> StrategyParams:
    """The inverse of :func:`params_to_json`."""
    fast = d["fast"]
    return StrategyParams(
        sessions=tuple(Session(s) for s in d["sessions"]),
        not_before=d["not_before"],
        not_after=d["not_after"],
        entry=EntryKind(d["entry"]),
        bar_seconds=int(d["bar_seconds"]),
        fast=None if fast is None else FastSchedule(
            distance_start=Decimal(fast["distance_start"]),
            distance_end=Decimal(fast["distance_end"]),
            spread_start=Decimal(fast["spread_start"]),
            spread_end=Decimal(fast["spread_end"]),
            step=int(fast["step"]),
        ),
        quote_age=Decimal(d["quote_age"]),
        quote_warmup=Decimal(d["quote_warmup"]),
        max_bars=d["max_bars"],
        rth=bool(d["rth"]),
        tif=str(d["tif"]),
        risk_usd=None if d["risk_usd"] is None else Decimal(d["risk_usd"]),
        # Keys added after format 1 shipped: a snapshot written before them has none.
        max_chase=None if (chase := d.get("max_chase")) is None else _price(chase),
        rule=Rule(d.get("rule", Rule.CLOSE.value)),
        volume_mult=Decimal(d.get("volume_mult", "2.0")),
        volume_lookback=int(d.get("volume_lookback", 20)),
        retest_within=_price(d.get("retest_within", "0.05")),
        opening_range=int(d.get("opening_range", 5)),
        level_offset=_price(d.get("level_offset", "0")),
        **_management_from_json(d),
    )


def spec_to_json(s: WatcherSpec, with_source: bool = True) -> JSON:
    """WatcherSpec as plain JSON values (``source`` left out for the digest)."""
    out: JSON = {
        "id": s.id,
        "symbol": s.symbol,
        "level": format_price(s.level),
        "qty": s.qty,
        "tp": [format_price(t) for t in s.tp],
        "tp_split": [_dec(x) for x in s.tp_split],
        "sl": None if s.sl is None else format_price(s.sl),
        "enabled": s.enabled,
        "params": params_to_json(s.params),
    }
    if s.level_name is not None:
        out["level_name"] = s.level_name.value
    if with_source:
        out["source"] = None if s.source is None else {"file": s.source.file, "line": s.source.line}
    return out


def spec_from_json(d: JSON) -> WatcherSpec:
    """The inverse of :func:`spec_to_json`."""
    source = d.get("source")
    return WatcherSpec(
        id=str(d["id"]),
        symbol=str(d["symbol"]),
        level=_price(d["level"]),
        params=params_from_json(d["params"]),
        qty=d["qty"],
        tp=tuple(_price(t) for t in d["tp"]),
        tp_split=tuple(Decimal(x) for x in d["tp_split"]),
        sl=None if d["sl"] is None else _price(d["sl"]),
        enabled=bool(d["enabled"]),
        source=None if source is None else SourceRef(str(source["file"]), int(source["line"])),
        level_name=None if (name := d.get("level_name")) is None else LevelName(name),
    )


def risk_to_json(r: RiskLimits) -> JSON:
    """RiskLimits as plain JSON values."""
    return {
        "max_positions": r.max_positions,
        "max_daily_loss_usd": _opt_dec(r.max_daily_loss_usd),
        "max_notional_usd": _opt_dec(r.max_notional_usd),
        "max_entries_per_day": r.max_entries_per_day,
        "max_consecutive_losses": r.max_consecutive_losses,
        "on_halt": r.on_halt.value,
    }


def risk_from_json(d: JSON) -> RiskLimits:
    """The inverse of :func:`risk_to_json`."""
    loss, notional = d["max_daily_loss_usd"], d["max_notional_usd"]
    return RiskLimits(
        max_positions=d["max_positions"],
        max_daily_loss_usd=None if loss is None else Decimal(loss),
        max_notional_usd=None if notional is None else Decimal(notional),
        max_entries_per_day=d["max_entries_per_day"],
        # Keys added after format 1 shipped: a snapshot written before them has none.
        max_consecutive_losses=d.get("max_consecutive_losses"),
        on_halt=OnHalt(d.get("on_halt", OnHalt.HOLD.value)),
    )
