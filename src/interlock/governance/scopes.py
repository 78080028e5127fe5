"""Who a budget or a rate limit applies to: a scope kind, an id (or every id), optionally one model.

A rule with ``id="*"`` applies to each member of its kind separately (every key gets its own 60
requests a minute); a rule naming an id replaces the ``*`` rule of the same kind, model (and, for
budgets, period) for that member. ``global`` rules have the id ``*`` and count everyone together.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

from interlock.core.context import Principal

__all__ = ["ANY", "SCOPE_KINDS", "LevelCache", "Scope", "ScopeKind", "applicable", "key_part"]

ScopeKind = Literal["global", "org", "team", "user", "key"]
SCOPE_KINDS: tuple[ScopeKind, ...] = ("global", "org", "team", "user", "key")
ANY = "*"

R = TypeVar("R")
L = TypeVar("L")


def key_part(text: str) -> str:
    """``text`` made safe to sit between the ``:`` of a storage key (ids and model names may hold
    ``:``, as Ollama's ``llama3:8b`` does)."""
    return text.replace("%", "%25").replace(":", "%3A")


@dataclass(frozen=True, slots=True)
class Scope:
    kind: ScopeKind
    id: str = ANY
    model: str | None = None
    """None: every model; otherwise only requests for this model count."""

    def subject(self, principal: Principal) -> str | None:
        """The concrete id this scope counts ``principal`` under, or None when it does not apply."""
        if self.kind == "global":
            return ANY
        member = _member(self.kind, principal)
        if member is None or (self.id != ANY and self.id != member):
            return None
        return member

    def storage(self, subject: str) -> str:
        """The scope part of a storage key: ``kind:subject:model``."""
        return f"{self.kind}:{key_part(subject)}:{key_part(self.model or ANY)}"


def _member(kind: ScopeKind, principal: Principal) -> str | None:
    if kind == "org":
        return principal.org_id
    if kind == "team":
        return principal.team_id
    if kind == "user":
        return principal.user_id
    return principal.key_id


def applicable(
    rules: Iterable[R],
    scope_of: Callable[[R], Scope],
    group_of: Callable[[R], Hashable],
    principal: Principal,
    model: str,
) -> list[tuple[R, str]]:
    """The rules that apply to ``principal`` asking for ``model``, each with its subject id.

    Within one group (``group_of``: the kind, model and whatever else makes two rules alternatives),
    rules naming the principal's id win over ``*`` rules.
    """
    named: list[tuple[R, str]] = []
    wildcards: list[tuple[R, str]] = []
    for rule in rules:
        scope = scope_of(rule)
        if scope.model is not None and scope.model != model:
            continue
        subject = scope.subject(principal)
        if subject is None:
            continue
        (wildcards if scope.id == ANY and scope.kind != "global" else named).append((rule, subject))
    taken = {group_of(rule) for rule, _ in named}
    return named + [(rule, subject) for rule, subject in wildcards if group_of(rule) not in taken]


class LevelCache(Generic[L]):
    """The levels a principal asking for a model counts against, found once per principal and model:
    the rules change only with a new engine, a key's owners only with a new principal."""

    def __init__(self, find: Callable[[Principal, str], tuple[L, ...]], most: int = 10_000) -> None:
        self._find = find
        self._most = most
        self._found: dict[tuple[str | None, ...], tuple[L, ...]] = {}

    def __call__(self, principal: Principal, model: str) -> tuple[L, ...]:
        key = (principal.key_id, principal.user_id, principal.team_id, principal.org_id, model)
        found = self._found.get(key)
        if found is None:
            if len(self._found) > self._most:
                self._found.clear()
            found = self._found[key] = self._find(principal, model)
        return found
