"""What every ``--jobs`` worker needs, loaded once: the forkserver imports this before forking.

Importing it loads the compiled tape reader from numba's cache and builds
the exchange calendar (together about a second); each worker forked after
starts with both, instead of paying them itself.
"""

from __future__ import annotations

import datetime as dt

import breakoutd.backtest.jobs  # noqa: F401 - the units' code
from breakoutd.calendar import day_sessions
from breakoutd.tape import parse_tape

parse_tape(b"time,symbol,open,high,low,close,volume,bid,bid_size,ask,ask_size\n"
           b"2026-03-09T09:30:00-04:00,A,1,1,1,1,1,,,,\n")
day_sessions(dt.date(2026, 3, 9))
