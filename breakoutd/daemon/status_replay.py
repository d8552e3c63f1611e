"""Journal lines back into catalog events: to rebuild the status at start-up, and for ``tail``.

A journal line is the event's JSON plus ``wall`` and ``mono_ns``; msgspec
ignores those extra keys and picks the event type from its ``event`` tag.
"""

from __future__ import annotations

from pathlib import Path
from typing import Union

import msgspec

from breakoutd.core import events as ev

AnyEvent = Union[tuple(ev.CORE_EVENTS)]  # type: ignore[valid-type]  # noqa: UP007
_decoder: msgspec.json.Decoder[ev.Event] = msgspec.json.Decoder(AnyEvent)


def decode_event(line: bytes | str) -> ev.Event | None:
    """The catalog event of one journal line, or None for a line that is not one."""
    try:
        return _decoder.decode(line)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


def journal_events(path: Path) -> list[ev.Event]:
    """Every catalog event of a journal file's whole lines, in order."""
    if not path.exists():
        return []
    lines = path.read_bytes().split(b"\n")
    # The last piece is empty, or a line still being written: not an event yet.
    return [e for e in map(decode_event, lines[:-1]) if e is not None]
