"""Fixtures for the tape tests: small hand-written tape files."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path

import pytest

from breakoutd.tape.model import HEADER

MakeTape = Callable[..., Path]


@pytest.fixture
def make_tape(tmp_path: Path) -> MakeTape:
    """Write lines to a tape file under ``header`` (no header line when None)."""

    def make(*lines: str, name: str = "tape.csv", header: str | None = HEADER) -> Path:
        text = "".join(f"{line}\n" for line in ([header] if header is not None else []) + list(lines))
        path = tmp_path / name
        if name.endswith(".gz"):
            path.write_bytes(gzip.compress(text.encode()))
        else:
            path.write_text(text)
        return path

    return make
