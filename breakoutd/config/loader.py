"""Load watchlist files and directories into one validated :class:`Watchlist`."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from breakoutd.collector import collection_paused
from breakoutd.config.document import FileShape, read_document
from breakoutd.config.errors import ConfigError, Problem
from breakoutd.config.fields import Problems
from breakoutd.config.safe_yaml import MAX_BYTES, compose_yaml
from breakoutd.config.watchlist import Watchlist, assemble

SUFFIXES = (".yaml", ".yml")


def _directory_files(directory: Path) -> list[Path]:
    # Dotfiles are editor locks and swap files (".#today.yaml"), never watchlists.
    return sorted(
        child for child in directory.iterdir()
        if child.suffix in SUFFIXES and not child.name.startswith(".") and child.is_file()
    )


def watchlist_files(paths: Sequence[str | Path], problems: Problems) -> list[str]:
    """The files named by ``paths``: files as given, directories' ``*.yaml``/``*.yml`` sorted."""
    files: list[str] = []
    seen: set[Path] = set()
    for given in paths:
        path = Path(given)
        if path.is_dir():
            found = _directory_files(path)
        elif path.is_file():
            found = [Path(os.fspath(given))]
        else:
            what = "is not a file or directory" if path.exists() else "no such file or directory"
            problems.add(Problem(os.fspath(given), None, "", what))
            continue
        for file in found:
            if file.resolve() not in seen:
                seen.add(file.resolve())
                files.append(os.fspath(given) if file == path else str(file))
    return files


def _read_text(file: str, problems: Problems) -> str | None:
    try:
        size = os.stat(file).st_size
        if size > MAX_BYTES:
            problems.add(Problem(file, None, "", f"file is {size} bytes, limit is {MAX_BYTES}"))
            return None
        data = Path(file).read_bytes()
    except OSError as exc:
        problems.add(Problem(file, None, "", f"cannot read: {exc.strerror or exc}"))
        return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        problems.add(Problem(file, line, "", f"not UTF-8 text (byte 0x{data[exc.start]:02x})"))
        return None


def _shape(text: str, file: str, problems: Problems) -> FileShape:
    try:
        root = compose_yaml(text, file)
    except ConfigError as exc:
        for problem in exc.problems:
            problems.add(problem)
        return FileShape(file)
    return read_document(root, file, problems)


def load_watchlists(paths: Sequence[str | Path]) -> Watchlist:
    """Load files and directories (non-recursive); raise ConfigError with every problem."""
    problems = Problems()
    files = watchlist_files(paths, problems)
    # The shapes are passed, not kept: they are freed as assemble returns, before the
    # collector resumes, so its first pass walks the watchlist but not the values read.
    with collection_paused():
        return assemble(_shapes(files, problems), files, problems)


def _shapes(files: Sequence[str], problems: Problems) -> list[FileShape]:
    shapes = []
    for file in files:
        text = _read_text(file, problems)
        if text is not None:
            shapes.append(_shape(text, file, problems))
    return shapes


def load_watchlist_text(text: str, file: str = "<string>") -> Watchlist:
    """Load one watchlist given as text (``file`` names it in problems)."""
    problems = Problems()
    with collection_paused():
        return assemble([_shape(text, file, problems)], [file], problems)
