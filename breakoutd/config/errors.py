"""Configuration problems: each one names the file, the line and the key path."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import msgspec

from breakoutd.errors import BreakoutdError


def _printable(text: str) -> str:
    """``text`` with every unprintable character as its escape (``\\t``, ``\\x07``, ``\\u2028``).

    A key or a quoted value may hold a tab, a control character or a line
    separator (YAML escapes make them); printed raw, one would split a problem
    over two lines or hide in the terminal."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a watchlist, located as precisely as we know."""

    file: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        """One line, whatever the file held: unprintable characters are shown escaped."""
        file, path, message = _printable(self.file), _printable(self.path), _printable(self.message)
        where = file if self.line is None else f"{file}:{self.line}"
        return f"{where}: {path}: {message}" if path else f"{where}: {message}"

    def sort_key(self) -> tuple[str, int, str, str]:
        """Order by file, then line (file-level problems first), then path."""
        return (self.file, self.line or 0, self.path, self.message)


class ConfigError(BreakoutdError):
    """A watchlist configuration that cannot be used; carries every problem found.

    A :class:`~breakoutd.errors.BreakoutdError` but not an operational one: at
    start-up the daemon stops on it and prints every problem on its own line,
    while a reload that meets it keeps the configuration in force."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: list[Problem] = sorted(set(problems), key=Problem.sort_key)
        super().__init__("\n".join(str(p) for p in self.problems))


class Origin(msgspec.Struct, frozen=True):
    """Where a value was written: file, line, key path, and how specific the layer is.

    ``rank`` orders the layers of a resolved watcher (built-in 0, preset 1,
    file defaults 2, the breakout itself 3) so a conflict between two values is
    reported where the more specific one was written.
    """

    file: str
    line: int | None
    path: str
    rank: int = 3

    def problem(self, message: str) -> Problem:
        """A problem at this place."""
        return Problem(self.file, self.line, self.path, message)

    def child(self, key: str | int, line: int | None) -> Origin:
        """The origin of a key or index below this one."""
        if isinstance(key, int):
            path = f"{self.path}[{key}]"
        else:
            path = f"{self.path}.{key}" if self.path else key
        return Origin(self.file, line, path, self.rank)
