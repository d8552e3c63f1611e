"""The pure strategy core.

Nothing in this package reads a clock, touches a file or a socket, logs, or
imports asyncio, ib_async or any other part of breakoutd: time and data come in
as arguments, decisions go out as values. The same code runs live, in
rehearsal and in backtest. ``tests/core/test_purity.py`` enforces this.
"""
