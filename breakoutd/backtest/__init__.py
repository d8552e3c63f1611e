"""Backtest: tapes through the strategy core, with simulated fills.

The decisions come from the same :class:`~breakoutd.core.watcher.WatcherMachine`
and :func:`~breakoutd.core.plans.plan_order` the daemon uses; this package only
feeds them bars in the order strategy.md prescribes and models fills
(``docs/backtest.md``).
"""

from breakoutd.backtest.engine import BacktestError, BacktestResult, WatcherResult, run_backtest

__all__ = ["BacktestError", "BacktestResult", "WatcherResult", "run_backtest"]
