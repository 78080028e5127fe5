"""The dashboard's plug-in point: a section is a page with a data function, a template and actions.

A :class:`Section` says everything the dashboard needs to serve a page — its path, title, the role
needed to see it, the async function that gathers its data, the template that renders that data,
optionally a detail page (``/ui/<path>/<item>``) and operator actions (``POST
/ui/<path>/actions/<name>``). :class:`SectionRegistry` holds them in navigation order. The app
serves every registered section the same way, so adding one touches nothing else.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from interlock.core.context import Principal
from interlock.core.errors import ServiceUnavailable
from interlock.store import Store
from interlock.ui.gateway import Gateway

__all__ = [
    "OPERATOR",
    "VIEWER",
    "ActionFunction",
    "DataFunction",
    "DetailFunction",
    "Section",
    "SectionContext",
    "SectionRegistry",
    "Viewer",
]

VIEWER = "viewer"
"""The role every signed-in key holds: it may look at its own traffic."""

OPERATOR = "operator"
"""The role that may see everything and act on deployments (today: the master key)."""


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who is looking at the dashboard, and what they may see."""

    principal: Principal
    csrf_token: str

    @property
    def is_master(self) -> bool:
        return self.principal.is_master

    @property
    def key_id(self) -> str:
        return self.principal.key_id

    @property
    def name(self) -> str:
        return self.principal.name

    @property
    def scope_key_id(self) -> str | None:
        """The only key whose data this viewer sees; ``None`` means every key's."""
        return None if self.principal.is_master else self.principal.key_id

    def has_role(self, role: str | None) -> bool:
        """Whether this viewer holds ``role``.

        The master key holds every role. Other keys hold :data:`VIEWER` only on the dashboard,
        whatever their role: the admin API enforces roles (docs/governance.md), the dashboard does
        not yet. This is the one place to change when it does.
        """
        return role is None or role == VIEWER or self.principal.is_master

    @property
    def can_operate(self) -> bool:
        return self.has_role(OPERATOR)


@dataclass(frozen=True, slots=True)
class SectionContext:
    """What a data, detail or action function is given."""

    runtime: Gateway
    viewer: Viewer
    params: Mapping[str, str]
    now: datetime

    @property
    def store(self) -> Store:
        """The open store; a 503 page when it is not open yet."""
        if self.runtime.store is None:
            raise ServiceUnavailable("The store is not open yet.")
        return self.runtime.store


DataFunction = Callable[[SectionContext], Awaitable[Mapping[str, Any]]]
"""Gathers a section's data: JSON-ready values (``/ui/api/<path>``) that its template renders."""

DetailFunction = Callable[[SectionContext, str], Awaitable[Mapping[str, Any] | None]]
"""Gathers one item's data for the detail page; ``None`` means no such item (or not this viewer's)."""

ActionFunction = Callable[[SectionContext, str], Awaitable[str]]
"""Performs an operator action on a target and returns a short message for the page."""


@dataclass(frozen=True, slots=True)
class Section:
    """One page of the dashboard. See the package docstring for an example."""

    path: str
    """URL segment: the page is served at ``/ui/<path>`` and its data at ``/ui/api/<path>``."""
    title: str
    template: str
    """Renders the page's live region from the data (refreshed every ``refresh_s`` seconds)."""
    data: DataFunction
    required_role: str | None = VIEWER
    """Who sees the section at all (see :meth:`Viewer.has_role`)."""
    order: int = 100
    """Position in the navigation; lower comes first."""
    refresh_s: float = 5.0
    detail: DetailFunction | None = None
    detail_template: str | None = None
    actions: Mapping[str, ActionFunction] = field(default_factory=dict)
    action_role: str = OPERATOR
    """Who may perform the section's actions (and see their buttons)."""

    def __post_init__(self) -> None:
        word = self.path.replace("-", "")
        if not word.isalnum() or self.path != self.path.lower() or self.path in _RESERVED:
            raise ValueError(
                f"section path {self.path!r} must be a lower-case word not in {sorted(_RESERVED)}"
            )
        if (self.detail is None) != (self.detail_template is None):
            raise ValueError(f"section {self.path!r}: give both detail and detail_template, or neither")


_RESERVED = frozenset({"api", "static", "login", "logout"})


class SectionRegistry:
    """The sections of one dashboard, in navigation order."""

    __slots__ = ("_sections",)

    def __init__(self, sections: Iterator[Section] | list[Section] | tuple[Section, ...] = ()) -> None:
        self._sections: dict[str, Section] = {}
        for section in sections:
            self.add(section)

    def add(self, section: Section) -> None:
        """Register ``section``; its path must be new."""
        if section.path in self._sections:
            raise ValueError(f"a section is already registered at {section.path!r}")
        self._sections[section.path] = section

    def get(self, path: str) -> Section | None:
        return self._sections.get(path)

    def __iter__(self) -> Iterator[Section]:
        return iter(sorted(self._sections.values(), key=lambda s: (s.order, s.path)))

    def __len__(self) -> int:
        return len(self._sections)

    def visible_to(self, viewer: Viewer) -> list[Section]:
        """The sections ``viewer`` may open, in navigation order."""
        return [section for section in self if viewer.has_role(section.required_role)]
