"""The text of a tape file: read, gunzipped in memory, header checked."""

from __future__ import annotations

import gzip
import importlib
import os
import types
import zlib

from .model import HEADER, TapeError


def _inflater() -> types.ModuleType:
    # ISA-L inflates about twice as fast as zlib (see tests/bench/bench_tape.py);
    # it is a dependency, and zlib has the same interface, only slower.
    try:
        return importlib.import_module("isal.isal_zlib")
    except ImportError:  # pragma: no cover
        return zlib


_inflate = _inflater()

_BOM = b"\xef\xbb\xbf"


def load(path: str | os.PathLike[str]) -> memoryview:
    """The file's bytes, gunzipped in memory when the name ends in .gz."""
    with open(path, "rb") as handle:
        raw = handle.read()
    if not os.fspath(path).endswith(".gz"):
        return memoryview(raw)
    return gunzip(raw, os.fspath(path))


def gunzip(raw: bytes, path: str) -> memoryview:
    """The gunzipped bytes, whatever the number of gzip members."""
    try:
        return memoryview(_members(raw))
    except (_inflate.error, zlib.error, ValueError):
        pass
    # Odd files (zero padding after the last member, corruption): the gzip
    # module copes or says what is wrong.
    try:
        return memoryview(gzip.decompress(raw))
    except (OSError, EOFError, zlib.error) as exc:
        raise TapeError(path, None, "gzip", f"not a readable gzip file ({exc})") from exc


def _members(raw: bytes) -> bytes:
    parts = []
    rest = raw
    while rest:  # appending to a .gz file makes one more member
        member = _inflate.decompressobj(31)  # 31: gzip header and trailer
        parts.append(member.decompress(rest))
        if not member.eof:
            raise ValueError("truncated")
        rest = member.unused_data
    return parts[0] if len(parts) == 1 else b"".join(parts)


def body_start(data: memoryview, source: str) -> int:
    """Where the rows start, after a header line that must be HEADER."""
    head = bytes(data[:4096])  # the header is one short line
    end = head.find(b"\n")
    line = head if end < 0 else head[:end]
    start = len(_BOM) if line.startswith(_BOM) else 0
    header = line[start:].removesuffix(b"\r").decode("utf-8", "replace")
    if header != HEADER:
        found = repr(header[:200]) if header else "an empty line"
        raise TapeError(source, 1, "header", f"expected {HEADER!r}, found {found}")
    return len(data) if end < 0 else end + 1
