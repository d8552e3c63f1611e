"""Phase two for one breakout: resolve its preset and check its prices together."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from breakoutd.config.errors import Origin, Problem
from breakoutd.config.fields import Located, Problems
from breakoutd.config.level_check import check_named_exits, check_named_level
from breakoutd.config.management_check import check_management, checked_params, has_stop
from breakoutd.config.params_check import Layered, most_specific
from breakoutd.config.schema import STRATEGY_KEYS, Section, hint
from breakoutd.core.params import LevelName, SourceRef, StrategyParams, WatcherSpec
from breakoutd.core.plans import STOP_LIMIT_OFFSET
from breakoutd.core.prices import format_price, round_to_tick, tick_size
from breakoutd.core.relative_exits import stop_below

_STRATEGY = frozenset(STRATEGY_KEYS)


def default_id(symbol: str, level: int | LevelName) -> str:
    """``SYMBOL@level`` with the level in canonical decimal (``BAC@13.50``) or its name."""
    if isinstance(level, LevelName):
        return f"{symbol}@{level.value}"
    return f"{symbol}@{format_price(level)}"


def _off_tick(price: Located[int]) -> str | None:
    tick = tick_size(price.value)
    if price.value % tick == 0:
        return None
    where = "at or above $1.00" if tick > 100 else "below $1.00"
    return f"{price.text} is not on the tick: {format_price(tick)} {where}"


def _check_sl(level: Located[int], sl: Located[int], problems: Problems) -> None:
    if sl.value >= level.value:
        problems.add(sl.at.problem(f"{sl.text} must be below level {level.text}"))
    elif (message := _off_tick(sl)) is not None:
        problems.add(sl.at.problem(message))
    elif round_to_tick(sl.value - STOP_LIMIT_OFFSET) <= 0:
        problems.add(sl.at.problem(f"{sl.text} is too low: its stop-limit sl - 0.02 is not a price"))


def _check_tp(level: Located[int], tp: tuple[Located[int], ...], problems: Problems) -> None:
    previous: Located[int] | None = None
    for rung in tp:
        if rung.value <= level.value:
            problems.add(rung.at.problem(f"{rung.text} must be above level {level.text}"))
        elif previous is not None and rung.value <= previous.value:
            problems.add(rung.at.problem(
                f"ladder prices must ascend: {rung.text} is not above {previous.text}"))
        elif (message := _off_tick(rung)) is not None:
            problems.add(rung.at.problem(message))
        previous = rung


def _check_split(merged: Layered, problems: Problems) -> bool:
    """True when tp_split is absent or fits the ladder."""
    split = merged.get("tp_split")
    if split is None or split.value is None:
        return True
    if not merged.ok("tp", "tp_r"):
        return False
    parts: tuple[Located[Decimal], ...] = split.value
    rungs = _rung_count(merged)
    if rungs < 2:
        problems.add(split.at.problem("tp_split needs a tp ladder (a list of at least two prices)"))
    elif len(parts) != rungs:
        problems.add(split.at.problem(f"{len(parts)} parts for {rungs} rungs: give one part per rung"))
    elif (total := sum((p.value for p in parts), Decimal(0))) != 1:
        problems.add(split.at.problem(f"parts must add up to 1, they add up to {total}"))
    else:
        return True
    return False


def _rung_count(merged: Layered) -> int:
    """How many take-profits the breakout has, as prices (``tp``) or in R (``tp_r``)."""
    tp, tp_r = merged.value("tp"), merged.value("tp_r")
    return len(tp) if tp else len(tp_r) if tp_r else 0


def _check_sizing(merged: Layered, at: Origin, problems: Problems) -> None:
    qty, risk, sl = merged.get("qty"), merged.get("risk_usd"), merged.get("sl")
    if not merged.ok("qty", "risk_usd", "sl"):
        return
    sized_by_risk = risk is not None and risk.value is not None
    if sized_by_risk and isinstance(merged.value("level"), LevelName) and risk is not None \
            and _written_sl_below(merged) is None:
        problems.add(risk.at.problem(
            f"risk_usd {risk.text} sizes by the distance to the stop, and with a named level "
            "the stop is known only on the day: give it as sl_below, or size with qty"))
        return
    if (qty is None or qty.value is None) and not sized_by_risk:
        problems.add(at.problem("qty is required (or size by risk with risk_usd)"))
    if sized_by_risk and not has_stop(merged) and risk is not None:
        problems.add(most_specific(risk, sl).problem(
            f"risk_usd {risk.text} sizes by the distance to sl, so sl is required"))


def _written_sl_below(merged: Layered) -> object | None:
    sl_below = merged.get("sl_below")
    return None if sl_below is None else sl_below.value


def rung_shares(qty: int, parts: tuple[Decimal, ...], rungs: int) -> tuple[int, ...]:
    """Shares per rung: ``floor(qty * part)`` or equal parts, the remainder to the first."""
    # Integer division for equal parts: Decimal(1) / 3 * 3 is 0.999..., which floors a share away.
    shares = [int(qty * p // 1) for p in parts] if parts else [qty // rungs] * rungs
    shares[0] += qty - sum(shares)
    return tuple(shares)


def _check_ladder_qty(merged: Layered, problems: Problems) -> None:
    qty, split = merged.get("qty"), merged.get("tp_split")
    tp = merged.get("tp") if merged.value("tp") else merged.get("tp_r")
    if qty is None or qty.value is None or merged.value("risk_usd") is not None:
        return  # risk-sized ladders are split when the size is known
    if tp is None or _rung_count(merged) < 2:
        return
    parts = tuple(p.value for p in split.value) if split and split.value else ()
    shares = rung_shares(qty.value, parts, _rung_count(merged))
    if min(shares) < 1:
        listed = ", ".join(str(s) for s in shares)
        problems.add(most_specific(tp, qty).problem(
            f"qty {qty.text} splits into {listed} shares over {len(shares)} rungs; "
            "every rung needs at least 1 share"))


def _check_exits(merged: Layered, problems: Problems) -> None:
    level, tp, sl = merged.get("level"), merged.get("tp"), merged.get("sl")
    rungs: tuple[Located[int], ...] = tp.value if tp is not None and tp.value else ()
    if level is not None and isinstance(level.value, LevelName):
        check_named_exits(level, sl, rungs, problems)
        return
    if rungs and not has_stop(merged) and merged.ok("sl", "sl_below") and tp is not None:
        problems.add(tp.at.problem("sl is required with tp (the bracket needs a stop)"))
    if level is None:
        return
    if sl is not None and sl.value is not None:
        _check_sl(level, sl, problems)
    _check_tp(level, rungs, problems)
    if _check_split(merged, problems):
        _check_ladder_qty(merged, problems)


def _required(merged: Layered, at: Origin, problems: Problems) -> bool:
    missing = [k for k in ("symbol", "level") if merged.get(k) is None and merged.ok(k)]
    for key in missing:
        problems.add(at.problem(f"{key} is required"))
    return not missing and merged.ok("symbol", "level")


@dataclass(frozen=True)
class _Base:
    """A preset under a file's defaults: merged, and its parameters checked, once."""

    layers: Layered
    params: StrategyParams
    problems: tuple[Problem, ...]  # what checking the parameters found


class FileLayers:
    """The layers under one file's breakouts: a preset, then the file's ``defaults``.

    A breakout that writes no strategy key of its own has the parameters of its
    preset under the defaults, so those are merged and checked once per preset
    rather than once per breakout (a 1 MB file holds some twenty thousand)."""

    def __init__(self, defaults: Section | None, presets: Mapping[str, Section]) -> None:
        self.defaults = defaults
        self.presets = presets
        self._bases: dict[str | None, _Base] = {}

    def base(self, preset: str | None) -> _Base:
        """The merged layers of ``preset`` (a known name, or None) and the defaults."""
        found = self._bases.get(preset)
        if found is None:
            layers = Layered([None if preset is None else self.presets[preset], self.defaults])
            checked = Problems()
            params = checked_params(layers, checked)
            found = self._bases[preset] = _Base(layers, params, tuple(checked.items))
        return found


def _preset_name(
    name: Located[Any] | None, presets: Mapping[str, Section], problems: Problems
) -> tuple[str | None, bool]:
    """The name of the breakout's preset if it has one, and whether the name resolved."""
    if name is None or name.value is None:
        return None, True
    if name.value not in presets:
        known = sorted(presets)
        message = f"no preset named {name.text!r}{hint(name.value, known)}"
        problems.add(name.at.problem(message + ("" if known else " (no presets are defined)")))
        return None, False
    return name.value, True


def _writes_strategy_keys(section: Section) -> bool:
    return not (_STRATEGY.isdisjoint(section.values) and _STRATEGY.isdisjoint(section.bad))


def _params(section: Section, base: _Base, merged: Layered, problems: Problems) -> StrategyParams:
    """The breakout's parameters: its preset's, unless it overrides some of them."""
    if _writes_strategy_keys(section):
        return checked_params(merged, problems)
    for problem in base.problems:
        problems.add(problem)
    return base.params


def _chosen_preset(defaults: Section | None, section: Section) -> Located[Any] | None:
    """``Layered([defaults, section]).get("preset")`` without merging every other key."""
    for layer in (section, defaults):
        if layer is not None and "preset" in layer.bad:
            return None  # a bad value (or a duplicate key) hides the layers below
        if layer is not None and "preset" in layer.values:
            return layer.values["preset"]
    return None


def resolve_breakout(section: Section, layers: FileLayers, problems: Problems) -> WatcherSpec | None:
    """The WatcherSpec of one breakout, or None when it has problems (recorded)."""
    if section.broken:
        return None
    before = len(problems)
    chosen = _chosen_preset(layers.defaults, section)
    preset, known = _preset_name(chosen, layers.presets, problems)
    base = layers.base(preset)
    merged = base.layers.extended(section)
    params = _params(section, base, merged, problems) if known else StrategyParams()
    if not _required(merged, section.at, problems):
        return None
    _check_sizing(merged, section.at, problems)
    _check_exits(merged, problems)
    check_named_level(merged, section, problems)
    check_management(merged, problems)
    if len(problems) > before or section.bad or merged.bad:
        return None
    return _spec(merged, params, section.at)


def _stop(merged: Layered, params: StrategyParams) -> int | None:
    """The initial stop: ``sl`` as written, or ``sl_below`` the level."""
    sl: int | None = merged.value("sl")
    if isinstance(merged.value("level"), LevelName):
        return None  # below a named level: set when the level is resolved on the day
    if sl is None and params.sl_below is not None:
        return stop_below(merged.value("level"), params.sl_below)
    return sl


def _spec(merged: Layered, params: StrategyParams, at: Origin) -> WatcherSpec:
    symbol, level = merged.value("symbol"), merged.value("level")
    name = level if isinstance(level, LevelName) else None
    tp: tuple[Located[int], ...] = merged.value("tp") or ()
    split: tuple[Located[Decimal], ...] = merged.value("tp_split") or ()
    return WatcherSpec(
        id=merged.value("id") or default_id(symbol, level),
        symbol=symbol,
        level=0 if name is not None else level,
        params=params,
        qty=merged.value("qty"),
        tp=tuple(t.value for t in tp),
        tp_split=tuple(s.value for s in split),
        sl=_stop(merged, params),
        enabled=merged.value("enabled", True),
        source=SourceRef(at.file, at.line or 0),
        level_name=name,
    )
