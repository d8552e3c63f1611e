"""Tape v1: recorded market data that breakoutd replays (tape-format.md).

``read_tape``/``read_tapes`` parse files fast into per-symbol column arrays
(prices in micro-dollars, instants in epoch nanoseconds); ``write_tape``
writes them back; ``synthetic_tape`` makes a realistic seeded day.
"""

from .model import SymbolTape, Tape, TapeError, TapeRow, iter_rows, tape_from_rows
from .reader import parse_tape, read_tape, read_tapes
from .synthetic import synthetic_tape
from .writer import format_tape, write_tape

__all__ = [
    "SymbolTape",
    "Tape",
    "TapeError",
    "TapeRow",
    "format_tape",
    "iter_rows",
    "parse_tape",
    "read_tape",
    "read_tapes",
    "synthetic_tape",
    "tape_from_rows",
    "write_tape",
]
