"""The reload plan: which watchers a new configuration adds, removes or changes."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from breakoutd.config.codec import risk_to_json, spec_to_json
from breakoutd.config.watchlist import Watchlist, make_watchlist
from breakoutd.core.params import RiskLimits, WatcherSpec


@dataclass(frozen=True, slots=True)
class ReloadPlan:
    """Watchers by id: added, removed, changed (old, new) and unchanged ids."""

    added: tuple[WatcherSpec, ...] = ()
    removed: tuple[WatcherSpec, ...] = ()
    changed: tuple[tuple[WatcherSpec, WatcherSpec], ...] = ()
    unchanged: tuple[str, ...] = ()

    def is_empty(self) -> bool:
        """True when applying the plan would change no watcher."""
        return not (self.added or self.removed or self.changed)

    def summary(self) -> str:
        """One line for logs and status: ``1 added, 0 removed, 2 changed, 4 unchanged``."""
        return (f"{len(self.added)} added, {len(self.removed)} removed, "
                f"{len(self.changed)} changed, {len(self.unchanged)} unchanged")


def plan_reload(old: Watchlist | None, new: Watchlist) -> ReloadPlan:
    """Compare two configurations by watcher id (``source`` is not compared)."""
    before = {w.id: w for w in old.watchers} if old is not None else {}
    after = {w.id: w for w in new.watchers}
    added = tuple(after[i] for i in sorted(after.keys() - before.keys()))
    removed = tuple(before[i] for i in sorted(before.keys() - after.keys()))
    kept = sorted(after.keys() & before.keys())
    changed = tuple((before[i], after[i]) for i in kept if before[i] != after[i])
    unchanged = tuple(i for i in kept if before[i] == after[i])
    return ReloadPlan(added, removed, changed, unchanged)


def in_force(old: Watchlist | None, new: Watchlist, failed: Collection[str]) -> Watchlist:
    """What applies when the watchers ``failed`` (ids) could not be applied.

    A failed change or removal keeps the old watcher, a failed add is left
    out: the next reload plans them again. Presets and risk are the new ones.
    """
    if not failed:
        return new
    before = {w.id: w for w in old.watchers} if old is not None else {}
    kept = [before.get(w.id) if w.id in failed else w for w in new.watchers]
    kept += [w for i, w in before.items() if i in failed and new.watcher(i) is None]
    watchers = [w for w in kept if w is not None]
    return make_watchlist(watchers, new.presets, new.risk, new.files, new.scan)


_VARIANT_SHOWN = {"level_name": None, "rule": "close", "volume_mult": "2", "volume_lookback": 20,
                  "retest_within": "0.05", "opening_range": 5, "level_offset": "0.00"}


def _flat(spec: WatcherSpec) -> dict[str, object]:
    out = spec_to_json(spec, with_source=False)
    out.update(out.pop("params"))
    # The snapshot leaves the variant keys out at their defaults; a plan shows them.
    for key, default in _VARIANT_SHOWN.items():
        out.setdefault(key, default)
    for key in ("not_before", "not_after", "exit_at"):
        seconds = out[key]
        if isinstance(seconds, int):
            out[key] = f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
    return out


def field_changes(old: WatcherSpec, new: WatcherSpec) -> tuple[str, ...]:
    """What differs between two versions of a watcher: ``sl 4.30 -> 4.35``."""
    before, after = _flat(old), _flat(new)
    return tuple(
        f"{key} {_show(before.get(key))} -> {_show(after.get(key))}"
        for key in after
        if before.get(key) != after.get(key)
    )


def _show(value: object) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_show(v)}" for k, v in value.items()) + "}"
    return str(value)


def describe_watcher(spec: WatcherSpec) -> str:
    """A one-line summary of a watcher for plans and logs."""
    flat = _flat(spec)
    if spec.level_name is not None:  # resolved on the day, from the market
        offset = spec.params.level_offset
        shown = spec.level_name.value + (f" {'+' if offset > 0 else ''}{flat['level_offset']}"
                                         if offset else "")
        parts = [f"{spec.symbol} level {shown}"]
    else:
        parts = [f"{spec.symbol} level {flat['level']}"]
    if spec.params.rule.value != "close":
        parts.append(f"rule {spec.params.rule.value}")
    if spec.params.risk_usd is None:
        parts.append(f"qty {spec.qty}")
    else:
        cap = f" (qty cap {spec.qty})" if spec.qty is not None else ""
        parts.append(f"risk_usd {flat['risk_usd']}{cap}")
    if spec.tp:
        tp = flat["tp"]
        parts.append(f"tp {_show(tp[0] if isinstance(tp, list) and len(tp) == 1 else tp)}")
    if spec.sl is not None:
        parts.append(f"sl {flat['sl']}")
    if spec.params.max_chase is not None:
        parts.append(f"max_chase {flat['max_chase']}")
    parts.extend(describe_management(spec))
    parts.append("/".join(s.value for s in spec.params.sessions))
    if not spec.enabled:
        parts.append("disabled")
    return " ".join(parts)


_MANAGEMENT_KEYS = ("sl_below", "tp_r", "breakeven", "trail", "trail_after", "exit_at", "max_hold",
                    "slices")


def describe_management(spec: WatcherSpec) -> list[str]:
    """The position-management keys that are set, as ``key value`` words for the plan."""
    flat = _flat(spec)
    out = []
    for key in _MANAGEMENT_KEYS:
        value = flat.get(key)
        if value is None or value == []:
            continue
        if key == "max_hold" and isinstance(value, int):
            value = duration_text(value)
        elif key == "tp_r" and isinstance(value, list):
            value = [f"{r}R" for r in value]
        elif key in ("breakeven", "trail_after"):
            value = f"{value}R"
        shown = _show(value[0] if isinstance(value, list) and len(value) == 1 else value)
        out.append(f"{key} {shown}")
    return out


def duration_text(seconds: int) -> str:
    """``1h30m``, ``45s``: a duration as the watchlist writes it."""
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "")
    return text + (f"{secs}s" if secs or not text else "")


def risk_changes(old: RiskLimits, new: RiskLimits) -> tuple[str, ...]:
    """What differs between two risk blocks: ``on_halt hold -> flatten``."""
    before, after = risk_to_json(old), risk_to_json(new)
    return tuple(f"{key} {_show(before.get(key))} -> {_show(value)}"
                 for key, value in after.items() if before.get(key) != value)


def describe_risk(risk: RiskLimits) -> str:
    """The daemon-wide limits on one line, ``none`` for no limit."""
    return ", ".join(f"{key} {_show(value)}" for key, value in risk_to_json(risk).items())
