"""The backtest engine: arm each watcher for the tape's day and replay its bars."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np

from breakoutd.backtest.fills import FillResult, simulate_fills
from breakoutd.backtest.levels import TapeLevels
from breakoutd.backtest.managed import simulate_managed
from breakoutd.backtest.near_miss import near_miss
from breakoutd.backtest.replay_variants import variant_candidates
from breakoutd.backtest.risk import Entered, RiskReplay, replay_risk
from breakoutd.backtest.series import BarSeries, SymbolSeries
from breakoutd.calendar import (
    DaySessions,
    day_sessions,
    exchange_date,
    exchange_ns,
    watcher_window,
)
from breakoutd.core import events as ev
from breakoutd.core.bars import NS
from breakoutd.core.levels import armed_after_known, resolved_spec
from breakoutd.core.near_miss import NearMiss
from breakoutd.core.params import RiskLimits, Rule, Session, WatcherSpec
from breakoutd.core.plans import OrderPlan, Rejection, plan_order
from breakoutd.core.prices import to_micros
from breakoutd.core.records import pickled_by_fields
from breakoutd.core.refs import order_ref
from breakoutd.core.watcher import Decision, Expiry, WatcherMachine
from breakoutd.tape import Tape


class BacktestError(ValueError):
    """The backtest cannot run on this input (e.g. tapes of several days)."""


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class WatcherResult:
    """What one watcher did on the tape's day."""

    spec: WatcherSpec
    outcome: str  # entered | rejected | expired
    kind: str | None
    trigger_at: int | None
    reason: str | None
    plan: OrderPlan | None = None
    fills: FillResult | None = None
    evaluated: int = 0  # core rule evaluations made for this watcher
    near_miss: NearMiss | None = None  # the bars it saw without deciding (core.near_miss)
    detail: str = ""  # a rejection's numbers
    resolved: ev.LevelResolved | None = None  # the named level, as resolved from the tapes

    @property
    def limit(self) -> int | None:
        """The entry limit of an entered limit order, else None."""
        return self.plan.limit if self.plan is not None and self.outcome == "entered" else None


@dataclass(frozen=True, slots=True)
class BacktestResult:
    """All watchers of one backtest, sorted by id."""

    day: dt.date
    results: tuple[WatcherResult, ...]
    rows: int
    evaluations: int
    risk: RiskReplay | None = None  # the day ledger's replay, when limits are set


def run_backtest(
    tape: Tape,
    watchers: Iterable[WatcherSpec],
    risk: RiskLimits | None = None,
    *,
    prior: Tape | None = None,
    prefilter: bool = True,
    progress: Callable[[int, int], None] | None = None,
    day: dt.date | None = None,
) -> BacktestResult:
    """Replay ``tape`` through the core for every enabled watcher.

    ``prior`` is the previous trading day's tape, for ``prior_high`` and
    ``prior_close`` levels (without it they are ``no_level``). ``day`` names
    the day when the tape may hold none of it: a part of a day's backtest run
    on its own (``breakoutd.backtest.jobs``) whose symbols did not trade."""
    dates = _tape_days(tape)
    if len(dates) > 1 or (day is not None and dates and dates != [day]):
        shown = ", ".join(d.isoformat() for d in dates)
        raise BacktestError(f"the tapes cover several days ({shown}); backtest one day at a time")
    if not dates and day is None:
        raise BacktestError("the tapes hold no rows")
    day = day if day is not None else dates[0]
    sessions = day_sessions(day)
    series = {sym: SymbolSeries(st) for sym, st in tape.symbols.items()}
    specs = sorted((w for w in watchers if w.enabled), key=lambda w: w.id)
    levels = TapeLevels(sessions, series, tape, prior) if sessions is not None and any(
        w.level_name is not None for w in specs) else None
    results: list[WatcherResult] = []
    for n, spec in enumerate(specs, 1):
        results.append(_run_watcher(spec, day, sessions, series.get(spec.symbol), prefilter,
                                    levels))
        if progress is not None:
            progress(n, len(specs))
    replay = None
    if limits_set(risk):
        assert risk is not None
        results, replay = apply_risk(results, risk, series)
    evaluations = sum(r.evaluated for r in results)
    return BacktestResult(day, tuple(results), tape.rows, evaluations, replay)


def _tape_days(tape: Tape) -> list[dt.date]:
    """The exchange dates a tape covers: rows are sorted, so the ends tell."""
    days: set[dt.date] = set()
    for st in tape.symbols.values():
        if len(st):
            days.update((exchange_date(int(st.time[0])), exchange_date(int(st.time[-1]))))
    return sorted(days)


def _run_watcher(
    spec: WatcherSpec, day: dt.date, sessions: DaySessions | None,
    series: SymbolSeries | None, prefilter: bool, levels: TapeLevels | None = None,
) -> WatcherResult:
    window = watcher_window(spec, sessions) if sessions is not None else None
    if window is None:
        return WatcherResult(spec, "expired", None, None, "no_session")
    resolved = None
    if spec.level_name is not None:
        found = levels.resolve(spec) if levels is not None else None
        if found is None:
            return WatcherResult(spec, "expired", None, None, "no_level")
        rng, resolved = found
        spec = resolved_spec(spec, to_micros(resolved.price))
        window = armed_after_known(window, rng.known_at)
        if window is None:
            return WatcherResult(spec, "expired", None, None, "session_end", resolved=resolved)
    result = _decide(spec, day, sessions, series, prefilter, window)
    return replace(result, resolved=resolved) if resolved is not None else result


def _decide(spec: WatcherSpec, day: dt.date, sessions: DaySessions | None,
            series: SymbolSeries | None, prefilter: bool, window: tuple[int, int]
            ) -> WatcherResult:
    machine = WatcherMachine(spec, *window)
    decision, evaluated = replay(machine, series, prefilter)
    if isinstance(decision, Expiry):
        upto = decision.at if decision.reason == "max_bars" else None
        return WatcherResult(spec, "expired", None, None, decision.reason, evaluated=evaluated,
                             near_miss=near_miss(machine, series, upto))
    assert sessions is not None and series is not None  # a trigger needs bars
    missed = near_miss(machine, series, decision.at, decision.kind)
    session = sessions.session_at(decision.at - 1) or Session.RTH
    ref = order_ref(day.strftime("%Y%m%d"), session.value, spec.id)
    outcome = plan_order(spec, series.quote_at(decision.at), ref)
    if isinstance(outcome, Rejection):
        return WatcherResult(spec, "rejected", decision.kind, decision.at, outcome.reason,
                             evaluated=evaluated, near_miss=missed, detail=outcome.detail)
    if spec.params.manages_position or spec.params.slices is not None:
        fills = simulate_managed(outcome, spec.params, spec.level, decision.at, series,
                                 exchange_ns(day, dt.time(0)), sessions.session_at)
    else:
        fills = simulate_fills(outcome, spec.level, decision.at, series)
    return WatcherResult(spec, "entered", decision.kind, decision.at, None, outcome, fills,
                         evaluated, near_miss=missed)


def replay(machine: WatcherMachine, series: SymbolSeries | None, prefilter: bool = True
           ) -> tuple[Decision, int]:
    """Feed a machine its bars in strategy.md's order until it decides.

    With ``prefilter`` the bars that cannot change the outcome are skipped
    with numpy: 1-second bars before the first one the fast rule fires on
    (found with a cheap necessary condition, then the rule's own distance and
    spread for each bar's k), and close-rule bars closing below the level
    once they no longer count toward ``max_bars``. The decisions are the same
    as without it (``tests/backtest`` checks it).
    """
    if series is None:
        return _final(machine), 0
    sec = series.seconds
    bars = series.bars(machine.close_bar_size)
    if machine.spec.params.rule is Rule.CLOSE:
        close = _close_candidates(machine, bars, prefilter)
    else:
        close = variant_candidates(machine, bars, prefilter)
    # Prefiltered without max_bars, the last close-rule candidate is a sure trigger:
    # no 1-second bar after it can matter.
    until = int(bars.end[close[-1]]) if close and prefilter and \
        machine.spec.params.max_bars is None else None
    fast = _fast_candidates(machine, sec, prefilter, until) if machine.thresholds else []
    evaluated = 0
    fi = ci = 0
    while fi < len(fast) or ci < len(close):
        # At one instant the 1-second bar goes first (strategy.md).
        take_fast = ci >= len(close) or (
            fi < len(fast) and sec.end[fast[fi]] <= bars.end[close[ci]])
        evaluated += 1
        if take_fast:
            decision: Decision | None = machine.on_fast_bar(sec.bar(fast[fi]))
            fi += 1
        else:
            decision = machine.on_close_bar(bars.bar(close[ci]))
            ci += 1
        if decision is not None:
            return decision, evaluated
    return _final(machine), evaluated


def _close_candidates(machine: WatcherMachine, bars: BarSeries, prefilter: bool) -> list[int]:
    c0 = int(np.searchsorted(bars.end, machine.armed_at, side="right"))
    c1 = int(np.searchsorted(bars.end, machine.disarm_at, side="right"))
    if not prefilter:
        return list(range(c0, c1))
    max_bars = machine.spec.params.max_bars
    if max_bars is not None:  # every bar counts until the max_bars-th one ends the watcher
        return list(range(c0, min(c1, c0 + max_bars)))
    hits = np.flatnonzero(bars.close[c0:c1] >= machine.level)
    return [c0 + int(hits[0])] if len(hits) else []


def _final(machine: WatcherMachine) -> Decision:
    expiry = machine.on_time(machine.disarm_at)
    return expiry if expiry is not None else _already(machine)


def _already(machine: WatcherMachine) -> Decision:
    if machine.decision is None:
        raise RuntimeError("watcher neither decided nor expired")
    return machine.decision


def _fast_candidates(machine: WatcherMachine, sec: BarSeries, prefilter: bool,
                     until: int | None = None) -> list[int]:
    a, z = machine.armed_at, machine.disarm_at
    i0 = int(np.searchsorted(sec.start, a, side="left"))
    i1 = int(np.searchsorted(sec.start, z - NS, side="right"))
    if until is not None:  # at one instant the 1-second bar goes first: it is kept
        i1 = min(i1, int(np.searchsorted(sec.end, until, side="right")))
    if i1 <= i0:
        return []
    if not prefilter:
        return list(range(i0, i1))
    th = machine.thresholds
    assert th is not None
    level = machine.level
    h = sec.high[i0:i1]
    mask = (sec.close[i0:i1] >= level) & (h >= level + min(th.distance))
    mask &= (h - sec.low[i0:i1]) <= max(th.spread)
    idx = np.flatnonzero(mask) + i0
    if not len(idx):
        return []
    # The rule itself on the bars that pass the cheap test: the distance and spread of
    # each bar's k. The first such bar fires the fast rule, so it is the only candidate.
    k = (sec.start[idx] // NS) % 60 // th.step
    hi = sec.high[idx]
    exact = (hi >= level + _as_array(th.distance)[k]) & (
        hi - sec.low[idx] <= _as_array(th.spread)[k])
    hits = np.flatnonzero(exact)
    return [int(idx[hits[0]])] if len(hits) else []


@lru_cache(maxsize=256)
def _as_array(values: tuple[int, ...]) -> np.ndarray:
    return np.asarray(values, dtype=np.int64)


def limits_set(risk: RiskLimits | None) -> bool:
    """Whether ``risk`` limits anything (else the day ledger is not replayed)."""
    return risk is not None and risk != RiskLimits()


def apply_risk(results: list[WatcherResult], limits: RiskLimits,
               series: Mapping[str, SymbolSeries]) -> tuple[list[WatcherResult], RiskReplay]:
    """The portfolio limits, decided by the day ledger over the entries in time order.

    ``results`` are a day's watchers each simulated alone, in id order; only
    this step couples them (``breakoutd.backtest.jobs`` runs it per day)."""
    entered = []
    for r in results:
        if r.outcome == "entered":
            assert r.plan is not None and r.trigger_at is not None and r.fills is not None
            entered.append(Entered(r.plan, r.trigger_at, r.fills))
    replay = replay_risk(entered, limits, series)
    out = []
    for r in results:
        reason = replay.rejected.get(r.spec.id)
        if reason is not None:
            r = WatcherResult(r.spec, "rejected", r.kind, r.trigger_at, reason,
                              evaluated=r.evaluated, near_miss=r.near_miss, resolved=r.resolved)
        elif r.spec.id in replay.flattened:
            r = replace(r, fills=replay.flattened[r.spec.id])
        out.append(r)
    return out, replay
