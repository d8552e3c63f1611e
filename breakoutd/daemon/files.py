"""Atomic file replacement: write a temp file, (fsync,) rename, (fsync the dir)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def replace_atomically(path: Path, data: bytes, durable: bool = True) -> None:
    """Replace ``path`` with ``data`` so a reader sees the old file or the new, never half.

    ``durable``: on disk when this returns, also after a power loss (two fsyncs).
    A file that is only a view rebuilt at start-up (the status file) does without:
    every fsync commits the filesystem's journal, and other writes to the same
    filesystem (the event journal's lines) wait for that commit."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    try:
        try:
            done = os.write(fd, data)
            while done < len(data):  # a short write: the rest, or the disk's error
                done += os.write(fd, data[done:])
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):  # a full disk gets its space back
            tmp.unlink(missing_ok=True)
        raise
    if not durable:
        return
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
