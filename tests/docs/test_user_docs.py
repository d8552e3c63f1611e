"""The user docs say what the code does: their examples run.

``docs/rules.md``: every ``>>>`` line runs as a doctest. ``docs/watchlists.md``:
every ``yaml`` block loads, and one followed by a ``text`` block gives exactly
those problems. The README and these docs name only files the repository has.
"""

from __future__ import annotations

import doctest
import re
from pathlib import Path

import pytest

from breakoutd.config import ConfigError, load_watchlist_text

ROOT = Path(__file__).resolve().parents[2]
FENCE = re.compile(r"^```\w*$", re.M)


def test_the_rules_examples_run() -> None:
    path = ROOT / "docs" / "rules.md"
    text = FENCE.sub("", path.read_text())  # a fence would read as expected output
    test = doctest.DocTestParser().get_doctest(text, {}, "rules.md", str(path), 0)
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    assert len(test.examples) > 30
    assert runner.summarize(verbose=False).failed == 0


def _watchlist_blocks() -> list[tuple[str, list[str] | None]]:
    text = (ROOT / "docs" / "watchlists.md").read_text()
    blocks = re.findall(r"```(yaml|text)\n(.*?)```", text, flags=re.S)
    out: list[tuple[str, list[str] | None]] = []
    for kind, body in blocks:
        if kind == "yaml":
            out.append((body, None))
        else:
            out[-1] = (out[-1][0], body.splitlines())
    return out


@pytest.mark.parametrize(("yaml", "problems"), _watchlist_blocks())
def test_the_watchlist_examples_load_or_fail_as_shown(yaml: str,
                                                      problems: list[str] | None) -> None:
    if problems is None:
        load_watchlist_text(yaml, "doc.yaml")
        return
    with pytest.raises(ConfigError) as failed:
        load_watchlist_text(yaml, "doc.yaml")
    assert [str(p) for p in sorted(failed.value.problems, key=type(failed.value.problems[0])
                                   .sort_key)] == problems


def test_the_watchlist_doc_names_every_strategy_key() -> None:
    from breakoutd.config.schema import FAST_KEYS, RISK_KEYS, STRATEGY_KEYS

    text = (ROOT / "docs" / "watchlists.md").read_text()
    for key in [*STRATEGY_KEYS, *FAST_KEYS, *RISK_KEYS]:
        assert f"`{key}`" in text or f"{key}:" in text, key


@pytest.mark.parametrize("doc", ["README.md", "docs/rules.md", "docs/watchlists.md",
                                 "docs/deploy.md", "docs/status.md"])
def test_docs_name_only_files_of_the_repository(doc: str) -> None:
    text = (ROOT / doc).read_text()
    named = set(re.findall(r"`((?:docs/|breakoutd/|tests/)?[\w./-]+\.md)`", text))
    named |= set(re.findall(r"\]\(([^)#]+\.md)\)", text))
    assert named
    missing = [n for n in named if not (ROOT / n).exists() and not (ROOT / "docs" / n).exists()]
    assert missing == []


def _options(parser: object, name: str) -> list[tuple[str, str]]:
    import argparse

    assert isinstance(parser, argparse.ArgumentParser)
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub, p in action.choices.items():
                out += _options(p, f"{name} {sub}")
        elif action.option_strings and "--help" not in action.option_strings:
            out.append((name, max(action.option_strings, key=len)))
    return out


def test_every_option_of_help_is_documented() -> None:
    from breakoutd.cli.ctl import build_parser as ctl_parser
    from breakoutd.cli.main import build_parser as main_parser

    docs = (ROOT / "README.md").read_text() + "".join(
        p.read_text() for p in sorted((ROOT / "docs").glob("*.md")))
    options = _options(main_parser(), "breakoutd") + _options(ctl_parser(), "breakoutctl")
    assert len(options) > 40
    undocumented = [(cmd, opt) for cmd, opt in options
                    if not re.search(rf"(?<![\w-]){re.escape(opt)}(?![\w-])", docs)]
    assert undocumented == []
    # One --tape per file: the README must not suggest `--tape a b`.
    assert "--tape FILE..." not in docs
