"""The bad-watchlist corpus: each case states the problems it must produce.

A case is a file or a directory under ``bad/``. Expected problems are written
in the files themselves as ``# expect: LINE: FRAGMENT`` (``-`` for no line):
the problem at that file and line must contain FRAGMENT after ``file:line: ``.
``{dir}`` in a fragment stands for the case directory as given.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
BAD = HERE / "bad"
CASES = sorted(
    p.name for p in BAD.iterdir()
    if not p.name.startswith((".", "_")) and (p.suffix in (".yaml", ".yml") or p.is_dir())
)
_EXPECT = re.compile(r"# expect: (\d+|-): (.+)")


@dataclass(frozen=True)
class Expected:
    """One problem a case must produce."""

    file: str
    line: int | None
    fragment: str

    def matches(self, reported: str) -> bool:
        """True when a printed problem is this one."""
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return reported.startswith(where + ": ") and self.fragment in reported[len(where) + 2:]


def expectations(case: str, given: str) -> list[Expected]:
    """The expected problems of ``case`` when it is loaded as the path ``given``."""
    path = BAD / case
    files = [(path, given)] if path.is_file() else [
        (f, f"{given}/{f.name}") for f in sorted(path.iterdir())
    ]
    out = []
    for file, name in files:
        for text in file.read_text(encoding="utf-8").splitlines():
            match = _EXPECT.fullmatch(text)
            if match:
                line = None if match.group(1) == "-" else int(match.group(1))
                out.append(Expected(name, line, match.group(2).replace("{dir}", given)))
    assert out, f"case {case} states no expected problem"
    return out


def unmatched(expected: list[Expected], reported: list[str]) -> tuple[list[Expected], list[str]]:
    """Pair every expectation with its own reported problem; return what is left over."""
    left = list(reported)
    missing = []
    for exp in expected:
        hit = next((r for r in left if exp.matches(r)), None)
        if hit is None:
            missing.append(exp)
        else:
            left.remove(hit)
    return missing, left
