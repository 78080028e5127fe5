"""``/admin/audit``: the audit log, newest first, and ``/admin/audit/verify``, which walks the hash
chain and names the first edited, deleted or reordered entry."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Query

from interlock.server.admin_access import Caller, json_response, open_store
from interlock.server.runtime import Runtime
from interlock.store import AuditEntry, ChainReport
from interlock.telemetry.request_log import parse_since

__all__ = ["audit_view", "register_audit_routes", "report_view"]


def audit_view(entry: AuditEntry) -> dict[str, Any]:
    """One entry as the admin API shows it."""
    return {
        "id": entry.id,
        "seq": entry.seq,
        "at": entry.at,
        "actor_key_id": entry.actor_key_id,
        "actor": entry.actor,
        "action": entry.action,
        "target": entry.target,
        "before": entry.before,
        "after": entry.after,
        "detail": dict(entry.detail),
        "prev_hash": entry.prev_hash,
        "hash": entry.hash,
    }


def report_view(report: ChainReport) -> dict[str, Any]:
    """A chain check as the admin API shows it."""
    return {
        "ok": report.ok,
        "entries": report.entries,
        "head_seq": report.head_seq,
        "head_hash": report.head_hash,
        "problem": report.problem,
        "seq": report.seq,
        "entry_id": report.entry_id,
    }


def register_audit_routes(app: FastAPI, runtime: Runtime) -> None:
    """Add the audit routes to the admin app."""

    @app.get("/audit")
    async def audit(
        _: Caller,
        action: str | None = Query(None, max_length=64),
        target: str | None = Query(None, max_length=512),
        actor_key_id: str | None = Query(None, max_length=64),
        since: str | None = None,
        limit: int = Query(100, ge=1, le=1000),
    ) -> Any:
        """Audit entries, newest first; ``since``: an ISO timestamp or a duration such as ``7d``."""
        entries = await open_store(runtime).audit.list(
            action=action,
            target=target,
            actor_key_id=actor_key_id,
            since=parse_since(since) if since else None,
            limit=limit,
        )
        return json_response({"object": "list", "data": [audit_view(e) for e in entries]})

    @app.get("/audit/verify")
    async def verify(_: Caller) -> Any:
        """Walk the whole chain. ``ok`` is false, with ``problem`` and ``seq``, at the first entry that
        was edited, deleted or moved. Keep ``head_hash`` elsewhere to anchor the chain."""
        return json_response(report_view(await open_store(runtime).audit.verify()))
