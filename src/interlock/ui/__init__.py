"""The dashboard at ``/ui``: server-rendered pages with live updates, signed in with an API key.

Wiring (one line in ``server/app.py``)::

    Mount("/ui", app=mount_ui(rt))

What a key sees: the master key sees everything and may drain, disable and enable deployments (each
change is written to the audit log); any other key sees only its own requests and spend, and no
operator buttons (the action endpoints answer 403). See docs/observability.md#dashboard.

Pages are *sections*, and a new one plugs in without touching the others. A section is a path, a
title, an async data function, a Jinja template for its live region, and optionally a required role,
a detail page and operator actions. A built-in section is a module in ``ui/pages/`` plus a template in
``ui/templates/``, listed once in ``ui/pages/__init__.py``::

    # ui/pages/rollouts.py
    from interlock.ui.charts import chart, series
    from interlock.ui.sections import Section, SectionContext

    async def rollouts_data(ctx: SectionContext) -> dict[str, object]:
        # ctx.runtime, ctx.store, ctx.params (the query string), ctx.now, and ctx.viewer, whose
        # scope_key_id is the only key whose data this viewer may see (None: every key's).
        return {"rollouts": [...], "charts": {"traffic": chart("line", xs, [series("canary", ys)])}}

    async def promote(ctx: SectionContext, target: str) -> str:
        ...  # change the state, then ctx.store.audit.record("promote", target, actor_key_id=...)
        return f"Promoted {target}."

    rollouts_section = Section(path="rollouts", title="Rollouts", template="rollouts.html",
                               data=rollouts_data, order=50, actions={"promote": promote})

The app then serves ``/ui/rollouts`` (the page; it refreshes its live region every ``refresh_s``
seconds), ``/ui/api/rollouts`` (the data as JSON), ``/ui/rollouts/<id>`` when the section has a
``detail`` function, and ``POST /ui/rollouts/actions/promote`` (form fields ``target`` and
``csrf``). Only viewers holding the section's ``action_role`` (operators) may post, and only they
should be shown buttons. In the template, ``data`` is what the data function returned, and
``_macros.html`` draws the common pieces::

    {% import "_macros.html" as ui %}
    {{ ui.chart("traffic", data.charts.traffic, "Traffic by variant") }}
    {% if viewer.can_operate %}
      {{ ui.action_form(base, section, "promote", rollout.id, "Promote", viewer) }}
    {% endif %}

A registry can also be assembled by hand (``default_registry()`` then ``registry.add(...)``) and
passed to :func:`mount_ui`.
"""

from __future__ import annotations

from starlette.applications import Starlette

from interlock.ui.app import create_ui_app, default_registry
from interlock.ui.gateway import Gateway
from interlock.ui.sections import (
    OPERATOR,
    VIEWER,
    Section,
    SectionContext,
    SectionRegistry,
    Viewer,
)

__all__ = [
    "OPERATOR",
    "VIEWER",
    "Section",
    "SectionContext",
    "SectionRegistry",
    "Viewer",
    "default_registry",
    "mount_ui",
]


def mount_ui(runtime: Gateway, registry: SectionRegistry | None = None) -> Starlette:
    """The dashboard as an ASGI app for ``runtime``, to mount at ``/ui``; the built-in sections
    unless ``registry`` says otherwise."""
    return create_ui_app(runtime, registry)
