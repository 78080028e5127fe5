"""The audit log: operator actions, newest first (operators only)."""

from __future__ import annotations

from typing import Any

from interlock.ui.sections import OPERATOR, Section, SectionContext

__all__ = ["audit_section"]

_LIMIT = 100


async def audit_data(ctx: SectionContext) -> dict[str, Any]:
    action = ctx.params.get("action") or None
    target = ctx.params.get("target") or None
    entries = await ctx.store.audit.list(action=action, target=target, limit=_LIMIT)
    return {
        "entries": [
            {
                "id": e.id,
                "at": e.at,
                "actor": e.actor_key_id,
                "action": e.action,
                "target": e.target,
                "detail": dict(e.detail),
            }
            for e in entries
        ],
        "filters": {"action": action or "", "target": target or ""},
    }


audit_section = Section(
    path="audit",
    title="Audit log",
    template="audit.html",
    data=audit_data,
    required_role=OPERATOR,
    order=90,
    refresh_s=10.0,
)
