"""The whole validated configuration, assembled from the files' shapes."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from types import MappingProxyType

from breakoutd.config.breakouts import FileLayers, resolve_breakout
from breakoutd.config.codec import params_to_json, risk_to_json, spec_to_json
from breakoutd.config.document import FileShape
from breakoutd.config.errors import ConfigError
from breakoutd.config.fields import Problems
from breakoutd.config.management_check import checked_params
from breakoutd.config.params_check import Layered
from breakoutd.config.scan_block import resolve_scan, scan_to_json
from breakoutd.config.schema import Section
from breakoutd.core.params import RiskLimits, StrategyParams, WatcherSpec
from breakoutd.core.scan import ScanSettings


@dataclass(frozen=True)
class Watchlist:
    """Every watcher of every file, the resolved presets and the risk limits."""

    watchers: tuple[WatcherSpec, ...]
    presets: Mapping[str, StrategyParams]
    risk: RiskLimits
    files: tuple[str, ...]
    scan: ScanSettings | None = None  # the market scanner (breakoutd.config.scan_block)

    @cached_property
    def digest(self) -> str:
        """sha256 of the resolved content, computed when first asked for.

        ``breakoutctl check`` never asks: on a large watchlist the digest cost as
        much as reading the file's values."""
        return compute_digest(self.watchers, self.presets, self.risk, self.scan)

    def watcher(self, watcher_id: str) -> WatcherSpec | None:
        """The watcher with this id, if any."""
        return next((w for w in self.watchers if w.id == watcher_id), None)


def compute_digest(
    watchers: Sequence[WatcherSpec], presets: Mapping[str, StrategyParams], risk: RiskLimits,
    scan: ScanSettings | None = None,
) -> str:
    """sha256 of the resolved content: comments, layout and key order do not change it."""
    payload = {
        "watchers": [spec_to_json(w, with_source=False) for w in sorted(watchers, key=lambda w: w.id)],
        "presets": {name: params_to_json(p) for name, p in sorted(presets.items())},
        "risk": risk_to_json(risk),
    }
    if scan is not None:  # absent, the digest is the one written before scanning existed
        payload["scan"] = scan_to_json(scan)
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def make_watchlist(
    watchers: Sequence[WatcherSpec],
    presets: Mapping[str, StrategyParams],
    risk: RiskLimits,
    files: Sequence[str],
    scan: ScanSettings | None = None,
) -> Watchlist:
    """A Watchlist with watchers sorted by id."""
    ordered = tuple(sorted(watchers, key=lambda w: w.id))
    frozen = MappingProxyType(dict(sorted(presets.items())))
    return Watchlist(ordered, frozen, risk, tuple(files), scan)


def _where(section: Section) -> str:
    return f"{section.at.file}:{section.at.line}"


def _collect_presets(shapes: Sequence[FileShape], problems: Problems) -> dict[str, Section]:
    presets: dict[str, Section] = {}
    for shape in shapes:
        for name, section in shape.presets.items():
            first = presets.get(name)
            if first is not None:
                problems.add(section.at.problem(
                    f"preset {name!r} is already defined at {_where(first)}"))
                continue
            presets.setdefault(name, section)
    return presets


def _risk(shapes: Sequence[FileShape], problems: Problems) -> RiskLimits:
    found = [s.risk for s in shapes if s.risk is not None]
    for extra in found[1:]:
        problems.add(extra.at.problem(
            f"risk is already set at {_where(found[0])}; set the daemon's limits in one file"))
    if not found:
        return RiskLimits()
    return RiskLimits(**{k: v.value for k, v in found[0].values.items()})


def _watchers(
    shapes: Sequence[FileShape], presets: Mapping[str, Section], problems: Problems
) -> list[WatcherSpec]:
    by_id: dict[str, WatcherSpec] = {}
    for shape in shapes:
        layers = FileLayers(shape.defaults, presets)
        for section in shape.breakouts:
            spec = resolve_breakout(section, layers, problems)
            if spec is None:
                continue
            first = by_id.get(spec.id)
            if first is not None and first.source is not None:
                at = section.values.get("id", None)
                place = at.at if at is not None else section.at
                problems.add(place.problem(
                    f"id {spec.id!r} is already used at {first.source.file}:{first.source.line}"
                    + ("" if at is not None else "; give one of them an id")))
                continue
            by_id[spec.id] = spec
    return list(by_id.values())


def assemble(shapes: Sequence[FileShape], files: Sequence[str], problems: Problems) -> Watchlist:
    """Phase two across files; raises ConfigError if any phase found a problem."""
    presets = _collect_presets(shapes, problems)
    resolved = {name: checked_params(Layered([s]), problems) for name, s in presets.items()}
    risk = _risk(shapes, problems)
    watchers = _watchers(shapes, presets, problems)
    scan = resolve_scan([s.scan for s in shapes if s.scan is not None], presets, problems)
    if problems.items:
        raise ConfigError(problems.items)
    return make_watchlist(watchers, resolved, risk, files, scan)
