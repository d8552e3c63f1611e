"""Watchlist YAML -> a frozen, typed, validated configuration (watchlist.md).

Loading is in two phases: shape (every key known, every value typed, read
from the YAML text with its line) and cross-field (presets resolved, prices
checked against each other, ids unique). Every problem is collected and
raised together in one :class:`ConfigError`. See ``README.md`` beside this
file for the decisions the contract leaves open.
"""

from breakoutd.config.errors import ConfigError, Problem
from breakoutd.config.loader import load_watchlist_text, load_watchlists, watchlist_files
from breakoutd.config.plan import (
    ReloadPlan,
    describe_risk,
    describe_watcher,
    field_changes,
    in_force,
    plan_reload,
    risk_changes,
)
from breakoutd.config.snapshot import read_snapshot, snapshot_path, write_snapshot
from breakoutd.config.watchlist import Watchlist

__all__ = [
    "ConfigError",
    "Problem",
    "ReloadPlan",
    "Watchlist",
    "describe_risk",
    "describe_watcher",
    "field_changes",
    "in_force",
    "load_watchlist_text",
    "load_watchlists",
    "plan_reload",
    "read_snapshot",
    "risk_changes",
    "snapshot_path",
    "watchlist_files",
    "write_snapshot",
]
