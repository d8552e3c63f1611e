"""``breakoutd run --record``: the tape recorder beside the trading, never in its way.

The recorder (:mod:`breakoutd.tape.recorder`) sees every quote and print the
daemon's market data reads; each main-loop tick writes the seconds that are
over. A failing write (a full disk) ends the recording with one
``TapeRecorded`` event carrying the error: trading does not depend on it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from loguru import logger

from breakoutd.core import events as ev
from breakoutd.tape.recorder import DayTapeFile, TapeRecorder


def tapes_dir(var: Path) -> Path:
    """Where the recorder writes: ``<var>/tapes/YYYY-MM-DD/tape.csv.gz``."""
    return var / "tapes"


class Recording:
    """A :class:`TapeRecorder` whose failures are reported once, then ignored."""

    def __init__(self, root: Path, clock: Callable[[], int],
                 emit: Callable[[ev.Event], None]) -> None:
        self._clock = clock
        self._emit = emit
        self.recorder: TapeRecorder | None = TapeRecorder(root, clock, self._closed)

    def _closed(self, f: DayTapeFile) -> None:
        self._emit(ev.TapeRecorded(at=self._clock(), path=str(f.path), rows=f.rows,
                                   late=self.late))

    @property
    def late(self) -> int:
        return self.recorder.late if self.recorder is not None else 0

    def on_quote(self, symbol: str, bid: int | None, bid_size: int | None, ask: int | None,
                 ask_size: int | None) -> None:
        if self.recorder is not None:
            self.recorder.on_quote(symbol, bid, bid_size, ask, ask_size)

    def on_prints(self, symbol: str, prints: list[tuple[int, int]], second: int | None) -> None:
        if self.recorder is not None:
            self.recorder.on_prints(symbol, prints, second)

    def tick(self) -> None:
        """Write what is due (each main-loop tick)."""
        self._guarded(lambda r: r.flush())

    def close(self) -> None:
        """Write the rest and close the day's file (at a stop)."""
        self._guarded(lambda r: r.close())
        self.recorder = None

    def _guarded(self, act: Callable[[TapeRecorder], object]) -> None:
        recorder = self.recorder
        if recorder is None:
            return
        try:
            act(recorder)
        except OSError as exc:
            self.recorder = None
            logger.error("the tape recorder stopped: {}; trading goes on", exc)
            self._emit(ev.TapeRecorded(at=self._clock(), path=str(recorder.root), rows=0,
                                       late=recorder.late, error=str(exc)))
