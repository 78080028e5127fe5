"""Allow-lists of names (models, pools): exact names and ``*``/``?`` globs, compiled once.

A key limited to ``["gpt-4o-mini", "claude-*"]`` may use exactly ``gpt-4o-mini`` and any name
starting with ``claude-``. The list is compiled when the key is loaded (one ``frozenset`` for the
exact names, one regular expression for all the globs together), so checking a request costs one
set lookup and, only for names not listed exactly, one regex match. An empty list means "no limit".
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["EVERYTHING", "AllowList", "is_glob"]

_GLOB_CHARS = frozenset("*?[")


def is_glob(pattern: str) -> bool:
    """Whether ``pattern`` holds a glob character (``*``, ``?`` or ``[``)."""
    return any(c in _GLOB_CHARS for c in pattern)


@dataclass(frozen=True, slots=True)
class AllowList:
    """Names that may be used; ``patterns`` as given (empty: any name). Build with :meth:`of`."""

    patterns: tuple[str, ...] = ()
    exact: frozenset[str] = frozenset()
    glob: re.Pattern[str] | None = None

    @classmethod
    def of(cls, patterns: Iterable[str]) -> AllowList:
        """Compile ``patterns`` (duplicates dropped, order kept)."""
        given = tuple(dict.fromkeys(p for p in patterns if p))
        if not given:
            return EVERYTHING
        globs = [p for p in given if is_glob(p)]
        exact = frozenset(p for p in given if not is_glob(p))
        glob = re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in globs)) if globs else None
        return cls(patterns=given, exact=exact, glob=glob)

    @property
    def limited(self) -> bool:
        """Whether the list limits anything (an empty list allows every name)."""
        return bool(self.patterns)

    def allows(self, name: str | None) -> bool:
        """Whether ``name`` is allowed. ``None`` (no name, such as a deployment without a pool)
        is allowed only when the list is empty."""
        if not self.patterns:
            return True
        if name is None:
            return False
        if name in self.exact:
            return True
        return self.glob is not None and self.glob.match(name) is not None


EVERYTHING = AllowList()
"""The empty allow-list: no limit."""
