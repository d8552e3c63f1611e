"""Reloading the watchlists while the daemon trades: on a save, on SIGHUP, on demand.

A valid new configuration is planned against the one in force and applied
watcher by watcher (a failure is that watcher's own); an invalid one changes
nothing. Either way one ``ConfigReloaded`` says what applied. Kept apart from
the daemon's wiring (:mod:`breakoutd.daemon.app`); the watching of the files
is :mod:`breakoutd.daemon.reload`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING

from loguru import logger

from breakoutd.config import (
    ConfigError,
    ReloadPlan,
    in_force,
    load_watchlists,
    plan_reload,
    snapshot_path,
    write_snapshot,
)
from breakoutd.core import events as ev
from breakoutd.core.params import WatcherSpec
from breakoutd.daemon.reload import watch_forever
from breakoutd.daemon.reload_notes import reload_notes

if TYPE_CHECKING:
    from breakoutd.daemon.app import Daemon


class Reloader:
    """Reads the watchlists again and applies what changed, one reload at a time."""

    def __init__(self, daemon: Daemon) -> None:
        self._d = daemon
        self._lock = asyncio.Lock()

    def start_watching(self, stop: asyncio.Event) -> None:
        d = self._d
        dirs = sorted({p if p.is_dir() else p.parent for p in d.watchlist_paths})
        loop = asyncio.get_running_loop()
        for dr in dirs:
            # The watch outlives any failure of its own or of a reload (watch_forever).
            d._tasks.append(loop.create_task(watch_forever(dr, self._reload_logged, stop)))

    def request_reload(self, trigger: str) -> None:
        """Reload soon (from a signal handler: SIGHUP)."""
        self._d._tasks.append(asyncio.get_running_loop().create_task(
            self._reload_logged(trigger)))

    async def _reload_logged(self, trigger: str) -> None:
        # The daemon's reload is looked up per call: a failure of one reload is journalled
        # (ops.jsonl), and the next save or SIGHUP reloads again.
        try:
            await self._d.reload(trigger)
        except Exception as exc:
            logger.opt(exception=exc).error("the reload ({}) failed: {}", trigger, exc)

    def show_config(self, result: str, errors: Sequence[str] = ()) -> None:
        d = self._d
        assert d.config is not None
        d.status.set_config(files=list(d.config.files), digest=d.config.digest,
                            reloaded_at=None if result == "initial" else d.clock(),
                            result=result, errors=list(errors))

    def show_watchers(self) -> None:
        d = self._d
        assert d.config is not None
        watchers = [*d.config.watchers, *d.scanning.specs()]
        sessions = {w.id: "+".join(s.value for s in w.params.sessions) for w in watchers}
        d.status.set_watcher_specs(watchers, sessions)

    async def reload(self, trigger: str) -> ev.ConfigReloaded:
        """Read the watchlists again; if valid, apply the plan, else change nothing.

        systemd hears RELOADING=1 before and READY=1 after (through the event)."""
        return await self._d.notifier.around_reload(self._reload(trigger))

    async def _reload(self, trigger: str) -> ev.ConfigReloaded:
        d = self._d
        async with self._lock:
            try:
                new = load_watchlists(d.watchlist_paths)
            except ConfigError as exc:
                errors = tuple(str(p) for p in exc.problems)
                for problem in errors:
                    logger.error("watchlist error, nothing changed: {}", problem)
                event = ev.ConfigReloaded(at=d.clock(), result="invalid", trigger=trigger,
                                          digest=d.config.digest if d.config else "",
                                          errors=errors)
                d.emit(event)
                return event
            d.before_reload(new)
            before = d.config.digest if d.config is not None else ""
            plan = plan_reload(d.config, new)
            d.today.set_limits(new.risk)
            notes = reload_notes(plan, d.store.state.fired, self._unfilled)
            failed = await self._apply(plan) if not plan.is_empty() else {}
            # What applies is in force (and in the snapshot): a failed watcher is planned again.
            d.config = in_force(d.config, new, failed)
            self.show_watchers()
            write_snapshot(snapshot_path(d.var), d.config)
            event = reloaded_event(d.clock(), trigger, before, d.config.digest, plan,
                                   failed, tuple(n for wid, n in notes if wid not in failed))
            d.emit(event)
            return event

    def _unfilled(self, order_ref: str) -> bool:
        router = self._d.router
        entry = router.entry(order_ref) if router is not None else None
        return entry is not None and entry.unfilled

    async def _apply(self, plan: ReloadPlan) -> dict[str, str]:
        """Apply a plan watcher by watcher; those that failed (id -> why) are returned."""
        arming = self._d.arming
        failed: dict[str, str] = {}
        for spec in plan.removed:
            await arming.per_watcher(failed, spec, arming.disarm(spec.id, "removed"))
        for old, new in plan.changed:
            await arming.per_watcher(failed, new, self._change(old, new))
        for spec in plan.added:
            await arming.per_watcher(failed, spec, arming.plan_one(spec))
        arming.arm_due()
        return failed

    async def _change(self, old: WatcherSpec, new: WatcherSpec) -> None:
        d = self._d
        fired = d.store.state.fired.get(new.id)
        if fired is None:  # not fired: re-arm with the new values
            if new.enabled:  # an unknown symbol fails here, with the old one still armed
                await d.arming.instrument(new.symbol)
            await d.arming.disarm(old.id, "disabled" if not new.enabled else "changed")
            await d.arming.plan_one(new)
        elif fired.outcome == "entered" and (old.tp, old.sl) != (new.tp, new.sl) and d.router:
            await d.router.modify_exits(fired.order_ref, new.tp or None, new.sl)


def reloaded_event(at: int, trigger: str, before: str, digest: str, plan: ReloadPlan,
                   failed: dict[str, str], notes: tuple[str, ...]) -> ev.ConfigReloaded:
    """The reload's event: what applied, and what did not.

    ``unchanged`` only when nothing in force changed: new risk limits, presets or a
    scan block apply although no watcher changes."""
    same = plan.is_empty() and digest == before
    result = "unchanged" if same else "partial" if failed else "applied"
    return ev.ConfigReloaded(
        at=at, result=result, trigger=trigger, digest=digest,
        added=tuple(w.id for w in plan.added if w.id not in failed),
        removed=tuple(w.id for w in plan.removed if w.id not in failed),
        changed=tuple(new.id for _, new in plan.changed if new.id not in failed),
        failed=tuple(failed.values()), notes=notes)
