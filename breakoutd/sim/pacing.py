"""IB's pacing of historical-data requests for small bars (error 162).

For bars of 30 seconds or less IB refuses a request (162, "pacing
violation") that would make, counted over the whole session:
- an identical request within 15 seconds,
- six or more requests for the same contract and whatToShow within 2 seconds,
- more than 60 requests within ten minutes.
Larger bars are not paced by these rules. Time is the virtual clock (IB counts
wall time; at speed 1 they agree). A refused request does not count.
"""

from __future__ import annotations

from collections import deque
from typing import NamedTuple

from breakoutd.core.bars import NS

PACED_BAR_NS = 30 * NS
IDENTICAL_NS = 15 * NS
SAME_CONTRACT_NS = 2 * NS
SAME_CONTRACT_MAX = 5  # a sixth within 2 s is refused
WINDOW_NS = 600 * NS
WINDOW_MAX = 60
VIOLATION = "Historical Market Data Service error message:Historical data request pacing violation"


class HistoryRequest(NamedTuple):
    """What makes two historical requests identical."""

    symbol: str
    end: str
    duration: str
    bar_size: str
    what: str
    use_rth: bool


class HistoryPacing:
    """Remembers the recent small-bar requests and says which to refuse."""

    def __init__(self) -> None:
        self._recent: deque[tuple[int, HistoryRequest]] = deque()

    def refusal(self, request: HistoryRequest, bar_ns: int, now_ns: int) -> str | None:
        """None when ``request`` may be served now (it is then counted), else why not."""
        if bar_ns > PACED_BAR_NS:
            return None
        recent = self._recent
        while recent and now_ns - recent[0][0] >= WINDOW_NS:
            recent.popleft()
        if any(r == request and now_ns - t < IDENTICAL_NS for t, r in recent):
            return f"{VIOLATION} (an identical request within {IDENTICAL_NS // NS} s)"
        same = sum(1 for t, r in recent if (r.symbol, r.what) == (request.symbol, request.what)
                   and now_ns - t < SAME_CONTRACT_NS)
        if same >= SAME_CONTRACT_MAX:
            return (f"{VIOLATION} ({SAME_CONTRACT_MAX + 1} requests for {request.symbol} "
                    f"within {SAME_CONTRACT_NS // NS} s)")
        if len(recent) >= WINDOW_MAX:
            return f"{VIOLATION} (more than {WINDOW_MAX} requests in {WINDOW_NS // NS // 60} min)"
        recent.append((now_ns, request))
        return None
