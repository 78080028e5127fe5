"""The store: SQLAlchemy 2 (async) over SQLite or PostgreSQL, migrated by Alembic on open.

::

    store = await Store.open("sqlite:///.interlock/interlock.db")   # or postgresql://…
    record, plaintext = await store.keys.create("ci", roles=["user"])
    writer = RequestLogWriter(store.requests)
    await writer.start()
    writer.submit(RequestRecord(...))          # never blocks, never raises
    await writer.stop()
    await store.close()

All timestamps are timezone-aware UTC ``datetime`` values. Errors from the database surface as
:class:`StoreUnavailable` (cannot reach or use it) or :class:`StoreError` (it refused the request),
never as driver exceptions, and never with a password in the message.
"""

from __future__ import annotations

from interlock.store.audit import AuditActor, AuditEntry, AuditRepository
from interlock.store.audit_chain import ChainReport
from interlock.store.errors import StoreConflict, StoreError, StoreUnavailable
from interlock.store.keys import KEY_PREFIX, KeyRecord, KeyRepository, hash_key, key_view
from interlock.store.requests import RequestLogRepository, RequestRecord, StatusClass
from interlock.store.sessions import SessionRepository
from interlock.store.spend import SpendLine, SpendRepository, SpendSummary
from interlock.store.store import Store
from interlock.store.tenants import (
    MEMBER_ROLES,
    Membership,
    OrgRecord,
    TeamRecord,
    TenantRepository,
    UserRecord,
    record_view,
)
from interlock.store.traffic import TrafficBucket, TrafficRepository, TrafficSeries
from interlock.store.writer import RequestLogWriter, RequestSink, WriterStats

__all__ = [
    "KEY_PREFIX",
    "MEMBER_ROLES",
    "AuditActor",
    "AuditEntry",
    "AuditRepository",
    "ChainReport",
    "KeyRecord",
    "KeyRepository",
    "Membership",
    "OrgRecord",
    "RequestLogRepository",
    "RequestLogWriter",
    "RequestRecord",
    "RequestSink",
    "SessionRepository",
    "SpendLine",
    "SpendRepository",
    "SpendSummary",
    "StatusClass",
    "Store",
    "StoreConflict",
    "StoreError",
    "StoreUnavailable",
    "TeamRecord",
    "TenantRepository",
    "TrafficBucket",
    "TrafficRepository",
    "TrafficSeries",
    "UserRecord",
    "WriterStats",
    "hash_key",
    "key_view",
    "record_view",
]
