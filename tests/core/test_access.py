"""Allow-lists: exact names and globs, compiled once; an empty list limits nothing."""

from __future__ import annotations

from interlock.core.access import EVERYTHING, AllowList, is_glob


def test_an_empty_list_allows_every_name() -> None:
    assert AllowList.of([]) is EVERYTHING
    assert EVERYTHING.allows("anything") and EVERYTHING.allows(None)
    assert not EVERYTHING.limited


def test_exact_names_and_globs() -> None:
    allowed = AllowList.of(["gpt-4o-mini", "claude-*", "llama-?b", "gpt-4o-mini"])
    assert allowed.patterns == ("gpt-4o-mini", "claude-*", "llama-?b")
    assert allowed.exact == frozenset({"gpt-4o-mini"})
    for name in ("gpt-4o-mini", "claude-3-haiku", "claude-", "llama-7b"):
        assert allowed.allows(name), name
    for name in ("gpt-4o", "gpt-4o-mini-2", "xclaude-3", "llama-70b", "", None):
        assert not allowed.allows(name), name


def test_glob_characters_are_not_regex() -> None:
    allowed = AllowList.of(["a.b", "x+*"])
    assert allowed.allows("a.b") and not allowed.allows("axb")
    assert allowed.allows("x+y") and not allowed.allows("xxy")
    assert is_glob("gpt-*") and is_glob("m?") and is_glob("[ab]") and not is_glob("gpt-4o")
