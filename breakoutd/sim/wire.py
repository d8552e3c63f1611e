"""Framing and field codec of the TWS API socket protocol (tws-protocol.md).

Every message, both ways, is a 4-byte big-endian length and then fields,
each terminated by NUL. The client opens with the raw bytes ``API\\0`` and a
length-prefixed version range; everything after that is framed.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

# The versions the sim speaks: every message it sends or reads has the layout
# of the version negotiated with each client (versions.py), from 157 (the
# lowest ib_async and ib_insync offer) to 178.
SERVER_VERSION = 178
MIN_CLIENT_VERSION = 157
API_PREFIX = b"API\0"
# A real request is at most a few kilobytes; anything near this is garbage.
MAX_FRAME = 1 << 20

_LENGTH = struct.Struct(">I")


class FrameError(ValueError):
    """The byte stream cannot be split into frames (the peer must be dropped)."""


class MessageError(ValueError):
    """A frame whose fields do not make the message its id names."""


def frame(payload: bytes) -> bytes:
    """Length-prefix a payload."""
    return _LENGTH.pack(len(payload)) + payload


def field_text(value: object) -> str:
    """The wire text of one field: None empty, bools 1/0, the rest str()."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if value is True:
        return "1"
    if value is False:
        return "0"
    return str(value)


def encode(fields: Iterable[object]) -> bytes:
    """One framed message from its fields."""
    # Strings and ints inline: this runs for every message the sim sends.
    texts = [f if type(f) is str else str(f) if type(f) is int else field_text(f) for f in fields]
    payload = ("\0".join(texts) + "\0").encode()
    return _LENGTH.pack(len(payload)) + payload


def price_text(micros: int | float | None) -> str:
    """A price on the wire: micro-dollar ints exactly (as format_price), floats as they are."""
    if micros is None:
        return ""
    if isinstance(micros, float):
        return repr(micros)
    # Integer arithmetic: this runs for every tick, and Decimal is slow.
    dollars, frac = divmod(abs(micros), 1_000_000)
    digits = f"{frac:06d}".rstrip("0")
    if len(digits) < 2:
        digits = digits.ljust(2, "0")
    return f"{'-' if micros < 0 else ''}{dollars}.{digits}"


class FrameBuffer:
    """Accumulates received bytes and yields complete messages as field lists."""

    __slots__ = ("_data",)

    def __init__(self) -> None:
        self._data = bytearray()

    def __len__(self) -> int:
        return len(self._data)

    def feed_raw(self, data: bytes) -> None:
        """Add received bytes."""
        self._data += data

    def frames(self) -> list[list[str]]:
        """Take the complete messages buffered so far (FrameError on garbage)."""
        out: list[list[str]] = []
        while len(self._data) >= 4:
            (size,) = _LENGTH.unpack_from(self._data)
            if size > MAX_FRAME:
                raise FrameError(f"frame of {size} bytes exceeds the {MAX_FRAME}-byte limit")
            if len(self._data) < 4 + size:
                break
            payload = bytes(self._data[4:4 + size])
            del self._data[:4 + size]
            out.append(split_fields(payload))
        return out

    def feed(self, data: bytes) -> list[list[str]]:
        """Add bytes; return the messages now complete."""
        self.feed_raw(data)
        return self.frames()

    def take_prefix(self, prefix: bytes) -> bool | None:
        """Consume ``prefix`` if it starts the buffer: None while undecided."""
        head = bytes(self._data[:len(prefix)])
        if head != prefix[:len(head)]:
            return False
        if len(head) < len(prefix):
            return None
        del self._data[:len(prefix)]
        return True


def split_fields(payload: bytes) -> list[str]:
    """Fields of one frame's payload (the trailing NUL ends the last field)."""
    text = payload.decode("utf-8", errors="replace")
    fields = text.split("\0")
    if fields and fields[-1] == "":
        fields.pop()
    return fields


def parse_version_range(fields: list[str]) -> tuple[int, int]:
    """The client's ``v157..178`` (with optional connect options) as (min, max)."""
    if len(fields) != 1:
        raise MessageError(f"handshake: expected one field, got {len(fields)}")
    text = fields[0].split(" ", 1)[0]
    if not text.startswith("v"):
        raise MessageError(f"handshake: {fields[0]!r} is not a version range")
    low, _, high = text[1:].partition("..")
    try:
        lo = int(low)
        hi = int(high) if high else lo
    except ValueError as exc:
        raise MessageError(f"handshake: {fields[0]!r} is not a version range") from exc
    return lo, hi


def negotiate(low: int, high: int) -> int | None:
    """The version to serve a client offering ``low..high``; None refuses it.

    IB answers the lower of its own maximum and the client's; a client whose
    range ends below what the server still supports is turned away. A client
    whose minimum is above the server's maximum still gets the server's
    version, and hangs up itself ("TWS is out of date"), as against IB.
    """
    if high < low or high < MIN_CLIENT_VERSION:
        return None
    return min(high, SERVER_VERSION)


class FieldReader:
    """Reads a message's fields in order with typed accessors and clear errors."""

    __slots__ = ("fields", "pos", "msg_id")

    def __init__(self, fields: list[str], start: int = 1) -> None:
        self.fields = fields
        self.pos = start
        self.msg_id = fields[0] if fields else "?"

    def _next(self, what: str) -> str:
        if self.pos >= len(self.fields):
            raise MessageError(f"message {self.msg_id}: missing field {self.pos} ({what})")
        value = self.fields[self.pos]
        self.pos += 1
        return value

    def text(self, what: str = "text") -> str:
        """The next field as text."""
        return self._next(what)

    def integer(self, what: str = "integer", default: int = 0) -> int:
        """The next field as an int; empty gives ``default``."""
        value = self._next(what)
        if value == "":
            return default
        try:
            return int(value)
        except ValueError:
            try:
                as_float = float(value)
            except ValueError:
                as_float = float("nan")
            if as_float.is_integer():
                return int(as_float)
            raise MessageError(
                f"message {self.msg_id}: field {self.pos - 1} ({what}): "
                f"{value!r} is not an integer") from None

    def number(self, what: str = "number") -> float | None:
        """The next field as a float; empty gives None."""
        value = self._next(what)
        if value == "":
            return None
        try:
            return float(value)
        except ValueError:
            raise MessageError(
                f"message {self.msg_id}: field {self.pos - 1} ({what}): "
                f"{value!r} is not a number") from None

    def flag(self, what: str = "flag") -> bool:
        """The next field as a 0/1 flag; empty is False."""
        return self.integer(what) != 0

    def skip(self, count: int = 1) -> None:
        """Skip fields that the sim ignores."""
        for _ in range(count):
            self._next("ignored")

    @property
    def remaining(self) -> int:
        """How many fields are left."""
        return len(self.fields) - self.pos
