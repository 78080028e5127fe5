"""Redaction of secrets in stored request and response bodies.

Bodies come from callers, so this code treats them as hostile: it runs on the event loop, and must
stay cheap whatever it is given. Every pattern is linear in the length of its input:

- each token pattern starts with a look-behind for its own character class, so a match can only
  start at the beginning of a run of such characters, and a run is scanned once;
- every repetition has an upper bound, and no repetition is nested in another or overlaps the
  next one (possessive quantifiers where a failed match could otherwise back off character by
  character);
- a private key's ``BEGIN`` line without an ``END`` redacts to the end of a bounded window instead
  of searching the rest of the text for an ``END`` (once per ``BEGIN``: the quadratic case).

Structure is bounded too: values nested deeper than :data:`MAX_DEPTH` become a marker, containers
keep their first :data:`MAX_ITEMS` entries, every string is cut at ``limit`` characters, and the
whole copy holds at most :data:`MAX_TOTAL_CHARS` characters of text. Nothing here raises for odd
input: a body is stored in part, or as a marker, never lost with an exception.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["MAX_DEPTH", "MAX_ITEMS", "MAX_TOTAL_CHARS", "REDACTED", "is_secret_name", "redact", "redact_text"]

REDACTED = "[REDACTED]"
MAX_DEPTH = 32
"""Containers nested deeper than this are replaced by ``"[too deep]"``."""
MAX_ITEMS = 1_000
"""Lists and objects keep this many entries; the rest is counted in a marker."""
MAX_TOTAL_CHARS = 256 * 1024
"""Characters of text (strings and object keys) kept in one redacted value, all strings together."""

_TOO_DEEP = "[too deep]"
_TRUNCATED = "…[truncated]"
_KEY_WINDOW = 8 * 1024  # a PEM private key of 4096-bit RSA is about 3.3 KB
_MARGIN = 1_024  # a secret that starts before the cut is still recognised whole

_NAME_CHARS = r"A-Za-z0-9_.\-"
_SECRET_WORD = (
    r"(?:passw(?:or)?d|pwd|passphrase|secret|secret[_\-]?key|api[_\-]?key|apikey|access[_\-]?key|private[_\-]?key"
    r"|credentials?|token|auth|authorization)"
)
_NAME_PATTERN = re.compile(rf"(?i)[{_NAME_CHARS}]{{0,40}}{_SECRET_WORD}(?:[_.\-][{_NAME_CHARS}]{{0,40}})?")
"""An object key that names a secret; ``max_tokens`` or ``tokenizer`` do not (the word must end)."""

_PRIVATE_KEY = re.compile(
    r"-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY[A-Z ]{0,8}-----"
    rf"(?:[\s\S]{{0,{_KEY_WINDOW}}}?-----END [A-Z0-9 ]{{0,40}}PRIVATE KEY[A-Z ]{{0,8}}-----"
    rf"|[\s\S]{{0,{_KEY_WINDOW}}})"
)
_URL_PASSWORD = re.compile(
    r"(?P<head>(?<![A-Za-z0-9+.\-])[A-Za-z][A-Za-z0-9+.\-]{1,30}+://[^\s:@/?#]{0,256}+:)"
    r"[^\s@/?#]{1,256}+(?=@)"
)
_KEY_VALUE = re.compile(
    rf"""(?ix)
    (?P<name>(?<![{_NAME_CHARS}])["']?[{_NAME_CHARS}]{{0,40}}?{_SECRET_WORD}(?![a-z])
        (?:[_.\-][{_NAME_CHARS}]{{0,40}}+)?["']?)
    (?P<sep>\s{{0,8}}+(?::|=>?)\s{{0,8}}+)
    (?:"(?:[^"\\\n]|\\.){{1,1024}}+"?               # a double-quoted value (JSON escapes kept inside)
      |'[^'\n]{{1,1024}}+'?                         # a single-quoted value
      |(?:(?:bearer|basic|token|digest)\s{{1,8}}+)? # an Authorization header's scheme
       [^\s"',;&{{}}()<>\[\]]{{1,1024}}+            # a bare value
    )
    """
)
_TOKENS = [
    re.compile(r"(?<![A-Za-z0-9_\-])sk-[A-Za-z0-9_\-]{16,512}+"),  # OpenAI, Anthropic (sk-ant-), Interlock
    re.compile(r"(?<![A-Za-z0-9_])(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{10,255}+"),  # Stripe-style secrets
    re.compile(r"(?<![A-Za-z0-9_])whsec_[A-Za-z0-9+/=]{16,255}+"),  # webhook signing secrets
    re.compile(r"(?<![A-Za-z0-9])(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Za-z0-9])"),  # AWS key ids
    re.compile(r"(?<![A-Za-z0-9_\-])AIza[0-9A-Za-z_\-]{35}(?![A-Za-z0-9_\-])"),  # Google API keys
    re.compile(r"(?<![A-Za-z0-9_\-])ya29\.[0-9A-Za-z_\-]{20,2048}+"),  # Google OAuth access tokens
    re.compile(r"(?<![A-Za-z0-9_])gh[pousr]_[A-Za-z0-9]{30,255}+"),  # GitHub tokens
    re.compile(r"(?<![A-Za-z0-9_])github_pat_[A-Za-z0-9_]{22,255}+"),
    re.compile(r"(?<![A-Za-z0-9_\-])xox[abposr]-[A-Za-z0-9\-]{10,255}+"),  # Slack tokens
    re.compile(  # JSON Web Tokens: header.payload.signature, both JSON parts start with '{"'
        r"(?<![A-Za-z0-9_\-])eyJ[A-Za-z0-9_\-]{8,4096}+\.eyJ[A-Za-z0-9_\-]{8,4096}+\.[A-Za-z0-9_\-]{0,4096}+"
    ),
    re.compile(r"(?i)(?<![A-Za-z0-9_\-])bearer\s{1,8}+[A-Za-z0-9._~+/\-]{16,4096}+={0,4}"),
]


def redact_text(text: str) -> str:
    """``text`` with every secret it recognises replaced by ``[REDACTED]``."""
    text = _PRIVATE_KEY.sub(REDACTED, text)
    text = _URL_PASSWORD.sub(lambda m: m.group("head") + REDACTED, text)
    for pattern in _TOKENS:
        text = pattern.sub(REDACTED, text)
    return _KEY_VALUE.sub(lambda m: m.group("name") + m.group("sep") + REDACTED, text)


def is_secret_name(name: str) -> bool:
    """Whether an object key such as ``api_key`` or ``"password"`` names a secret value."""
    return len(name) <= 128 and _NAME_PATTERN.fullmatch(name.strip("\"'")) is not None


def redact(value: Any, limit: int = 16_384) -> Any:
    """A bounded copy of ``value`` with secrets replaced and each string cut at ``limit`` characters.

    Values under a key that names a secret (``"api_key"``, ``"password"`` …) are replaced whole.
    Never raises, however deep, wide or long ``value`` is.
    """
    return _Redactor(limit).copy(value, 0)


class _Redactor:
    """One bounded walk over a value: the character budget is shared by all its strings."""

    __slots__ = ("budget", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = max(0, limit)
        self.budget = MAX_TOTAL_CHARS

    def copy(self, value: Any, depth: int) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict | list | tuple):
            if depth >= MAX_DEPTH:
                return _TOO_DEEP
            if isinstance(value, dict):
                return self.mapping(value, depth)
            return self.sequence(value, depth)
        return value

    def text(self, value: str) -> str:
        keep = min(self.limit, self.budget)
        self.budget -= min(len(value), keep)
        if len(value) <= keep:
            return redact_text(value)
        # Redact a little past the cut, so a secret that starts before it is recognised whole.
        return redact_text(value[: keep + _MARGIN])[:keep] + _TRUNCATED

    def mapping(self, value: dict[Any, Any], depth: int) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        for index, (key, item) in enumerate(value.items()):
            if index >= MAX_ITEMS or self.budget <= 0:
                result["…"] = f"[{len(value) - index} more keys]"
                break
            name = self.text(key) if isinstance(key, str) else key
            secret = isinstance(key, str) and isinstance(item, str) and is_secret_name(key)
            result[name] = REDACTED if secret else self.copy(item, depth + 1)
        return result

    def sequence(self, value: list[Any] | tuple[Any, ...], depth: int) -> list[Any]:
        result: list[Any] = []
        for index, item in enumerate(value):
            if index >= MAX_ITEMS or self.budget <= 0:
                result.append(f"[{len(value) - index} more items]")
                break
            result.append(self.copy(item, depth + 1))
        return result
