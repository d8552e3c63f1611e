"""A bounded, tag-free YAML reader that keeps the line of every value.

PyYAML's parser (the libyaml one when present) turns the text into events;
this module composes them into a small node tree itself, so that:

- nothing is ever constructed from a tag: any explicit tag is an error, so
  ``!!python/object/apply`` can never run;
- aliases are never expanded: every node carries the number of nodes it
  would expand to, and composing stops as soon as the document would grow
  past :data:`MAX_NODES` (an alias bomb fails on its first few levels);
- nesting depth, alias uses and file size are bounded;
- scalars keep their exact text, so ``49.02`` is read as written (never as a
  float) and ``09:35`` stays a time (YAML 1.1 would read 575).
"""

from __future__ import annotations

import msgspec
import yaml

from breakoutd.config.characters import character_problems
from breakoutd.config.errors import ConfigError, Problem

MAX_BYTES = 1024 * 1024
MAX_DEPTH = 20
MAX_NODES = 250_000
MAX_ALIASES = 1_000

# libyaml when it is built in; the pure-Python parser gives the same events.
_Parser: type[yaml.SafeLoader] | type[yaml.CSafeLoader] = getattr(
    yaml, "CSafeLoader", yaml.SafeLoader
)

_NULL_WORDS = frozenset({"", "~", "null", "Null", "NULL"})


# The node, origin and located-value types of config are frozen msgspec Structs
# rather than frozen dataclasses: as immutable, and built several times faster
# (a 1 MB watchlist makes some 170,000 nodes and 100,000 of each of the others).
class Scalar(msgspec.Struct, frozen=True, eq=False):
    """A scalar as written; ``plain`` is False for quoted and block scalars."""

    text: str
    plain: bool
    line: int
    weight: int = 1

    @property
    def is_null(self) -> bool:
        """True for an empty value, ``~`` or ``null`` written plain."""
        return self.plain and self.text in _NULL_WORDS


class Seq(msgspec.Struct, frozen=True, eq=False):
    """A sequence and the line it starts on."""

    items: tuple[Node, ...]
    line: int
    weight: int


class Map(msgspec.Struct, frozen=True, eq=False):
    """A mapping as its (key, value) pairs in order, duplicates kept."""

    pairs: tuple[tuple[Node, Node], ...]
    line: int
    weight: int


Node = Scalar | Seq | Map


class _Abort(Exception):
    """A limit was hit or the document is malformed: stop composing."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


def _tag_text(tag: str) -> str:
    return "!!" + tag.removeprefix("tag:yaml.org,2002:") if tag.startswith("tag:yaml.org") else tag


class _Composer:
    """Builds the node tree from parser events, enforcing the limits."""

    def __init__(self, parser: yaml.SafeLoader | yaml.CSafeLoader) -> None:
        self._parser = parser
        self._anchors: dict[str, Node] = {}
        self._total = 0
        self._aliases = 0

    def document(self) -> Node | None:
        """The single document of the stream, or None for an empty file."""
        parser = self._parser
        parser.get_event()  # StreamStart
        if parser.check_event(yaml.StreamEndEvent):
            return None
        parser.get_event()  # DocumentStart
        root = self._node(parser.get_event(), 1)
        parser.get_event()  # DocumentEnd
        if not parser.check_event(yaml.StreamEndEvent):
            event = parser.peek_event()
            raise _Abort(_line(event), "a watchlist file holds one YAML document; split it into files")
        return root

    def _grow(self, line: int, weight: int) -> None:
        self._total += weight
        if self._total > MAX_NODES:
            raise _Abort(line, f"document expands to more than {MAX_NODES} values (alias bomb?)")

    # Each event is fetched once and handed down (no peek before every node): the
    # composer runs once per value of a file that may hold a quarter million.
    def _node(self, event: yaml.Event | None, depth: int) -> Node:
        line = _line(event)
        kind = type(event)
        if kind is yaml.AliasEvent:
            return self._alias(event, line)  # type: ignore[arg-type]
        if depth > MAX_DEPTH:
            raise _Abort(line, f"nesting is deeper than {MAX_DEPTH} levels")
        tag = getattr(event, "tag", None)
        if tag is not None:
            raise _Abort(line, f"YAML tags are not allowed (found {_tag_text(tag)})")
        node: Node
        if kind is yaml.ScalarEvent:
            node = Scalar(event.value, not event.style, line)  # type: ignore[union-attr]
            self._total += 1
            if self._total > MAX_NODES:
                self._grow(line, 0)
        elif kind is yaml.SequenceStartEvent:
            node = self._sequence(depth, line)
        elif kind is yaml.MappingStartEvent:
            node = self._mapping(depth, line)
        else:  # pragma: no cover - the parser guarantees a node event here
            raise _Abort(line, f"unexpected {kind.__name__}")
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            # Registered only once complete, so an alias cannot refer to its own parent.
            self._anchors[anchor] = node
        return node

    def _alias(self, event: yaml.AliasEvent, line: int) -> Node:
        self._aliases += 1
        if self._aliases > MAX_ALIASES:
            raise _Abort(line, f"more than {MAX_ALIASES} aliases")
        target = self._anchors.get(event.anchor or "")
        if target is None:
            raise _Abort(line, f"alias *{event.anchor} refers to no earlier anchor")
        self._grow(line, target.weight)
        return target

    def _sequence(self, depth: int, line: int) -> Seq:
        get, node = self._parser.get_event, self._node
        items: list[Node] = []
        weight = 1
        event = get()
        while type(event) is not yaml.SequenceEndEvent:
            item = node(event, depth + 1)
            items.append(item)
            weight += item.weight
            event = get()
        return Seq(tuple(items), line, weight)

    def _mapping(self, depth: int, line: int) -> Map:
        get, node = self._parser.get_event, self._node
        pairs: list[tuple[Node, Node]] = []
        weight = 1
        event = get()
        while type(event) is not yaml.MappingEndEvent:
            key = node(event, depth + 1)
            value = node(get(), depth + 1)
            pairs.append((key, value))
            weight += key.weight + value.weight
            event = get()
        return Map(tuple(pairs), line, weight)


def _line(event: yaml.Event | None) -> int:
    mark = event.start_mark if event is not None else None
    return mark.line + 1 if mark is not None else 1


def _syntax_problem(file: str, text: str, exc: yaml.MarkedYAMLError) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark is not None else None
    message = f"YAML syntax error: {exc.problem or exc.context or 'invalid document'}"
    if exc.context and exc.problem:
        message += f" ({exc.context})"
    lines = text.splitlines()
    if line is not None and 0 < line <= len(lines) and "\t" in lines[line - 1]:
        message += "; tabs are not allowed for indentation, use spaces"
    return Problem(file, line, "", message)


def compose_yaml(text: str, file: str) -> Node | None:
    """Parse ``text`` into a node tree, or raise ConfigError naming file and line."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_BYTES:
        raise ConfigError([Problem(file, None, "", f"file is {size} bytes, limit is {MAX_BYTES}")])
    if bad_characters := character_problems(text, file):
        raise ConfigError(bad_characters)
    parser = _Parser(text)
    try:
        return _Composer(parser).document()
    except _Abort as exc:
        raise ConfigError([Problem(file, exc.line, "", exc.message)]) from None
    except yaml.MarkedYAMLError as exc:
        raise ConfigError([_syntax_problem(file, text, exc)]) from None
    except yaml.reader.ReaderError as exc:  # only what the scan above let through
        line = text.count("\n", 0, exc.position) + 1
        raise ConfigError([Problem(file, line, "", f"YAML error: {exc.reason}")]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([Problem(file, None, "", f"YAML error: {exc}")]) from None
    finally:
        parser.dispose()
