"""Control characters, tabs and odd line ends: ``breakoutctl check`` names each one's line.

Run through the real command in a child process, so what is checked is what
an operator's terminal shows: every problem is one ``file:line: `` line.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from breakoutd.config import ConfigError, load_watchlist_text

REPO = Path(__file__).resolve().parents[2]


def _breakout(symbol: str, middle: str = "") -> bytes:
    return f"breakouts:\n  - symbol: {symbol}\n{middle}    level: 1\n    qty: 1\n".encode()


# name -> (file content, the problems: (line, fragment of the message))
BAD: dict[str, tuple[bytes, list[tuple[int, str]]]] = {
    "nul": (b"breakouts:\n  - {symbol: A, level: 1, qty: 1}\x00\n",
            [(2, "column 34: control character U+0000 (NUL)")]),
    "bel_in_value": (b"breakouts:\n  - {symbol: B\x07, level: 1, qty: 1}\n",
                     [(2, "column 15: control character U+0007 (BEL) is not allowed")]),
    "esc_in_quotes": (b'breakouts:\n  - {symbol: "C\x1b[0m", level: 1, qty: 1}\n',
                      [(2, "column 16: control character U+001B (escape)")]),
    "del_in_comment": (b"# note\x7f\n" + _breakout("D"), [(1, "column 7: control character U+007F (DEL)")]),
    "two_lines": (b"breakouts:\n  - {symbol: E\x01\x02, level: 1, qty: 1}\n  - {symbol: F\x03, qty: 1}\n",
                  [(2, "column 15: control character U+0001"), (3, "column 15: control character U+0003 is")]),
    "cr_alone": (b"breakouts:\r  - {symbol: G, level: 1, qty: 1}\n",
                 [(1, "column 11: carriage return U+000D without a line feed")]),
    "cr_after_content": (b"breakouts:\n  - {symbol: H, level: 1, qty: 1}\n  # x\rqty: 2\n",
                         [(3, "column 6: carriage return")]),
    "bom_inside": (b"breakouts:\n  - {symbol: I\xef\xbb\xbf, level: 1, qty: 1}\n",
                   [(2, "column 15: byte order mark U+FEFF is only allowed at the start")]),
    "next_line": (b"breakouts:\n  - {symbol: J, level: 1, qty: 1}  # a\xc2\x85qty: 5\n",
                  [(2, "column 39: control character U+0085 (next line)")]),
    "line_separator": (b"breakouts:\n  - {symbol: K\xe2\x80\xa8, level: 1, qty: 1}\n",
                       [(2, "column 15: Unicode line separator U+2028")]),
    "tab_indent": (b"breakouts:\n  - symbol: L\n    level: 1\n\tqty: 1\n",
                   [(4, "tabs are not allowed for indentation")]),
    "tab_after_dash": (b"breakouts:\n  -\tsymbol: M\n    level: 1\n    qty: 1\n",
                       [(2, "tabs are not allowed for indentation")]),
    "tab_in_value": (_breakout("N\tO"), [(2, "breakouts[0].symbol: 'N\\tO' is not a symbol")]),
    "tab_in_key": (_breakout("P", '    "le\tvel": 1\n'),
                   [(3, "breakouts[0].le\\tvel: unknown key 'le\\tvel'")]),
    "escaped_controls_in_key": (_breakout("Q", '    "a\\x07b\\u2028c\\nd": 1\n'),
                                [(3, "breakouts[0].a\\x07b\\u2028c\\nd: unknown key")]),
}

# Allowed: a leading byte order mark, CRLF line ends, tabs where YAML allows them.
GOOD = {
    "bom_at_start": b"\xef\xbb\xbf" + _breakout("R"),
    "crlf": _breakout("S").replace(b"\n", b"\r\n"),
    "tab_after_colon": b"breakouts:\n  - symbol: T\n    level:\t1\n    qty: 1\n",
    "tab_in_flow": b"breakouts:\n  - {symbol: U,\tlevel: 1,\tqty: 1}\t\n",
    "tab_in_comment": b"# a\tnote\n" + _breakout("V"),
}


def _check(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "breakoutd.cli.ctl", "check", *map(str, paths)],
                          cwd=REPO, capture_output=True, text=True, timeout=60, check=False)


def test_every_problem_is_one_located_line(tmp_path: Path) -> None:
    for name, (data, _) in BAD.items():
        (tmp_path / f"{name}.yaml").write_bytes(data)
    result = _check(tmp_path)
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    expected = [(f"{tmp_path}/{name}.yaml", line, fragment)
                for name, (_, found) in BAD.items() for line, fragment in found]
    assert len(lines) == len(expected), result.stdout
    assert all(re.match(r"[^:]+\.yaml:\d+: \S", line) for line in lines), result.stdout
    assert all(line.isprintable() for line in lines)
    for file, line, fragment in expected:
        where = f"{file}:{line}: "
        assert any(out.startswith(where) and fragment in out for out in lines), (where, fragment, lines)
    assert result.stderr == f"{len(expected)} problems found\n"


def test_allowed_characters_check_clean(tmp_path: Path) -> None:
    for name, data in GOOD.items():
        (tmp_path / f"{name}.yaml").write_bytes(data)
    result = _check(tmp_path)
    assert (result.returncode, result.stdout) == (0, f"ok: {len(GOOD)} files, {len(GOOD)} watchers "
                                                     "(0 disabled), 0 presets\n")


@pytest.mark.parametrize("char", ["\x00", "\x07", "\x1b", "\x7f", "\x85", "\u2029", "\r"])
def test_the_daemon_gets_the_same_located_problem(char: str) -> None:
    """The daemon loads through the same reader: a bad character never reaches YAML."""
    with pytest.raises(ConfigError) as err:
        load_watchlist_text(f"breakouts:\n  - symbol: A\n    level: 1{char}  # x\n    qty: 1\n", "w.yaml")
    (problem,) = err.value.problems
    assert (problem.file, problem.line) == ("w.yaml", 3)
    assert problem.message.startswith("column 13: ")
