"""Configuration problems: each one names the file, the line and the key path."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a watchlist, located as precisely as we know."""

    file: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"

    def sort_key(self) -> tuple[str, int, str, str]:
        """Order by file, then line (file-level problems first), then path."""
        return (self.file, self.line or 0, self.path, self.message)


class ConfigError(Exception):
    """A watchlist configuration that cannot be used; carries every problem found."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: list[Problem] = sorted(set(problems), key=Problem.sort_key)
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass(frozen=True, slots=True)
class Origin:
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
