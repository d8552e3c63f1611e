"""The performance report: trades and their figures, from a backtest or the daemon's journals.

Both sources become the daemon's own events and are folded through
:class:`breakoutd.core.ledger.DayLedger` (:mod:`breakoutd.report.trades`), so a
trade's P&L after commissions is computed by the one piece of code the daemon
trades with, live and in backtest.
"""
