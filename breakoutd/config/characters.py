"""Characters a watchlist may not hold, found before the YAML parser sees them.

PyYAML refuses most control characters with a message that has no line
(only a character offset) and spans two lines; it also counts a lone CR, NEL
(U+0085) and U+2028/U+2029 as line ends, so every line number after one would
disagree with the operator's editor and ``grep -n``. None of them has a use in
a watchlist, and most are invisible on screen, so each is refused here with
its line (counted in LF) and column. A tab stays allowed where YAML allows it,
and a byte order mark at the very start is the encoding's, not the text's.
"""

from __future__ import annotations

import re

from breakoutd.config.errors import Problem

_FORBIDDEN = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff\ud800-\udfff]|\r(?!\n)"
)
_NAMES = {
    0x00: "NUL", 0x07: "BEL", 0x08: "backspace", 0x0B: "vertical tab", 0x0C: "form feed",
    0x1B: "escape", 0x7F: "DEL", 0x85: "next line",
}


def _describe(char: str) -> str:
    code = ord(char)
    if char == "\r":
        return ("carriage return U+000D without a line feed: "
                "save the file with LF (or CRLF) line endings")
    if char == "\ufeff":
        return "byte order mark U+FEFF is only allowed at the start of the file: delete it"
    if char in "\u2028\u2029":
        kind = "line" if char == "\u2028" else "paragraph"
        return f"Unicode {kind} separator U+{code:04X} is not allowed: use a plain line break"
    if 0xD800 <= code <= 0xDFFF or code in (0xFFFE, 0xFFFF):
        return f"U+{code:04X} is not a character: delete it"
    name = _NAMES.get(code)
    label = f"U+{code:04X} ({name})" if name else f"U+{code:04X}"
    return f"control character {label} is not allowed: delete it"


def character_problems(text: str, file: str) -> list[Problem]:
    """One problem per line holding a forbidden character (its first), with the column."""
    problems: list[Problem] = []
    line, line_start, last_line = 1, 0, 0
    for match in _FORBIDDEN.finditer(text):
        at = match.start()
        if at == 0 and match.group() == "\ufeff":
            continue
        line += text.count("\n", line_start, at)
        line_start = text.rfind("\n", 0, at) + 1
        if line == last_line:
            continue
        last_line = line
        column = at - line_start + 1
        problems.append(Problem(file, line, "", f"column {column}: {_describe(match.group())}"))
    return problems
