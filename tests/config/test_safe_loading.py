"""Hostile or broken files fail with a located problem and never run or expand anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from breakoutd.cli.ctl import main
from breakoutd.config import ConfigError, load_watchlist_text, load_watchlists
from breakoutd.config.safe_yaml import MAX_ALIASES, MAX_BYTES
from tests.config.corpus import BAD


def _problems(paths: list[str | Path]) -> list[str]:
    with pytest.raises(ConfigError) as err:
        load_watchlists(paths)
    return [str(p) for p in err.value.problems]


def test_python_tags_never_execute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the payload is `touch X` in the working directory
    text = (BAD / "python_object.yaml").read_text()
    assert "os.system" in text
    problems = _problems([BAD / "python_object.yaml"])
    with pytest.raises(ConfigError):
        load_watchlist_text(text)
    assert problems == [f"{BAD / 'python_object.yaml'}:5: "
                        "YAML tags are not allowed (found !!python/object/apply:os.system)"]
    assert not (tmp_path / "X").exists()


def test_huge_file_is_refused_before_parsing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    huge = tmp_path / "huge.yaml"
    row = "  - {symbol: AAPL, level: 190.00, qty: 100}\n"
    huge.write_text("breakouts:\n" + row * (MAX_BYTES // len(row) + 1))
    size = huge.stat().st_size
    expected = f"{huge}: file is {size} bytes, limit is {MAX_BYTES}"
    assert _problems([huge]) == [expected]
    assert main(["check", str(huge)]) == 1
    assert capsys.readouterr().out.splitlines() == [expected]
    with pytest.raises(ConfigError, match="limit is"):
        load_watchlist_text(huge.read_text())


def test_alias_bomb_is_refused_without_expanding() -> None:
    text = (BAD / "alias_bomb.yaml").read_text()
    with pytest.raises(ConfigError) as err:
        load_watchlist_text(text, "bomb.yaml")
    (problem,) = err.value.problems
    assert (problem.file, problem.line) == ("bomb.yaml", 7)
    assert "alias bomb" in problem.message


def test_alias_uses_are_bounded() -> None:
    text = "x: &x 1\ny: [" + ", ".join(["*x"] * (MAX_ALIASES + 1)) + "]\n"
    with pytest.raises(ConfigError, match=f"more than {MAX_ALIASES} aliases"):
        load_watchlist_text(text)


def test_aliases_inside_limits_are_read_as_values() -> None:
    wl = load_watchlist_text("""\
breakouts:
  - {symbol: AAA, level: &lvl 5.00, qty: &q 10, sl: &s 4.50}
  - {symbol: BBB, level: *lvl, qty: *q, sl: *s}
""")
    assert [(w.id, w.qty, w.sl) for w in wl.watchers] == [
        ("AAA@5.00", 10, 4_500_000), ("BBB@5.00", 10, 4_500_000)]


def test_text_that_is_not_utf8_names_its_line(tmp_path: Path) -> None:
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes(b"breakouts:\n  - symbol: CAF\xc9\n")
    assert _problems([bad]) == [f"{bad}:2: not UTF-8 text (byte 0xc9)"]


def test_a_byte_order_mark_is_fine(tmp_path: Path) -> None:
    bom = tmp_path / "bom.yaml"
    bom.write_bytes(b"\xef\xbb\xbfbreakouts:\n  - {symbol: A, level: 1, qty: 1}\n")
    assert [w.id for w in load_watchlists([bom]).watchers] == ["A@1.00"]


def test_missing_paths_are_problems(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.yaml"
    assert _problems([missing]) == [f"{missing}: no such file or directory"]
    assert main(["check", str(missing)]) == 1
    assert capsys.readouterr().out == f"{missing}: no such file or directory\n"
