"""The tables, as SQLAlchemy Core objects, and the two column types they need on both backends.

The migrations under ``migrations/versions`` create these tables; this module is what the
repositories query and what ``alembic revision --autogenerate`` compares against. A change here
without a new migration is a bug.

Timestamps are timezone-aware UTC ``datetime`` values on the Python side. PostgreSQL stores them as
``timestamptz``; SQLite stores naive UTC text in a fixed-width format, so text order is time order
and the indexes on ``created_at`` work for range scans.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator, TypeEngine

__all__ = [
    "KEYS_REVISION",
    "VERSION_TABLE",
    "UTCDateTime",
    "api_keys",
    "audit_chain_head",
    "audit_log",
    "json_type",
    "metadata",
    "orgs",
    "request_log",
    "store_meta",
    "store_secrets",
    "team_members",
    "teams",
    "ui_session_revocations",
    "users",
]

VERSION_TABLE = "interlock_alembic_version"
"""Alembic's bookkeeping table; named so it cannot clash with an application's own Alembic."""

KEYS_REVISION = "keys_revision"
"""The ``store_meta`` row bumped on every change that affects how a key resolves: a key created,
updated or revoked; an org, team or user changed or deleted; a membership changed."""

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC in Python, whatever the backend stores."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: pass a timezone-aware datetime (UTC)")
        value = value.astimezone(UTC)
        # SQLite has no time zones; storing naive UTC keeps one fixed-width, sortable text format.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def json_type() -> TypeEngine[Any]:
    """JSON text on SQLite, ``jsonb`` on PostgreSQL (indexable and compact when queried later)."""
    return JSON().with_variant(JSONB(), "postgresql")


api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String, primary_key=True),
    Column("name", String, nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True, index=True),
    Column("key_prefix", String, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=True),
    Column("revoked_at", UTCDateTime, nullable=True),
    Column("last_used_at", UTCDateTime, nullable=True),
    Column("user_id", String, nullable=True),
    Column("team_id", String, nullable=True),
    Column("org_id", String, nullable=True),
    Column("roles", json_type(), nullable=False, server_default=text("'[]'")),
    Column("metadata", json_type(), nullable=False, server_default=text("'{}'")),
    # allow-lists: exact names or globs; empty means no limit
    Column("models", json_type(), nullable=False, server_default=text("'[]'")),
    Column("pools", json_type(), nullable=False, server_default=text("'[]'")),
    Index("ix_api_keys_team_id", "team_id"),
    Index("ix_api_keys_user_id", "user_id"),
)

orgs = Table(
    "orgs",
    metadata,
    Column("id", String, primary_key=True),
    Column("name", String, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("disabled", Boolean, nullable=False, server_default=text("false")),
    Column("deleted_at", UTCDateTime, nullable=True),
    Column("metadata", json_type(), nullable=False, server_default=text("'{}'")),
    # names are unique among the orgs that exist (a deleted org's name may be used again)
    Index(
        "uq_orgs_name_live",
        "name",
        unique=True,
        sqlite_where=text("deleted_at IS NULL"),
        postgresql_where=text("deleted_at IS NULL"),
    ),
)
"""Organizations: the top of the tenant tree. Deleting one is a soft delete (``deleted_at``)."""

teams = Table(
    "teams",
    metadata,
    Column("id", String, primary_key=True),
    Column("org_id", String, ForeignKey("orgs.id", name="fk_teams_org_id"), nullable=False, index=True),
    Column("name", String, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("disabled", Boolean, nullable=False, server_default=text("false")),
    Column("deleted_at", UTCDateTime, nullable=True),
    Column("metadata", json_type(), nullable=False, server_default=text("'{}'")),
    Index(
        "uq_teams_org_id_name_live",
        "org_id",
        "name",
        unique=True,
        sqlite_where=text("deleted_at IS NULL"),
        postgresql_where=text("deleted_at IS NULL"),
    ),
)
"""Teams of an org. Service keys belong to a team; users are members of teams."""

users = Table(
    "users",
    metadata,
    Column("id", String, primary_key=True),
    Column("org_id", String, ForeignKey("orgs.id", name="fk_users_org_id"), nullable=False, index=True),
    Column("email", String, nullable=False),
    Column("name", String, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("disabled", Boolean, nullable=False, server_default=text("false")),
    Column("deleted_at", UTCDateTime, nullable=True),
    Column("metadata", json_type(), nullable=False, server_default=text("'{}'")),
    Index(
        "uq_users_email_live",
        "email",
        unique=True,
        sqlite_where=text("deleted_at IS NULL"),
        postgresql_where=text("deleted_at IS NULL"),
    ),
)
"""People. A user belongs to one org; personal keys belong to a user."""

team_members = Table(
    "team_members",
    metadata,
    Column("team_id", String, ForeignKey("teams.id", name="fk_team_members_team_id"), primary_key=True),
    Column(
        "user_id",
        String,
        ForeignKey("users.id", name="fk_team_members_user_id"),
        primary_key=True,
        index=True,
    ),
    Column("role", String, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)
"""Which users are members of which teams, with their role there (``team_admin`` or ``developer``)."""

request_log = Table(
    "request_log",
    metadata,
    Column("request_id", String, primary_key=True),
    Column("created_at", UTCDateTime, nullable=False, index=True),
    Column("key_id", String, nullable=True),
    Column("user_id", String, nullable=True),
    Column("team_id", String, nullable=True),
    Column("model", String, nullable=False),
    Column("deployment", String, nullable=True),
    Column("provider", String, nullable=True),
    Column("upstream_model", String, nullable=True),
    Column("operation", String, nullable=False),
    Column("stream", Boolean, nullable=False, server_default=text("false")),
    Column("status", Integer, nullable=False),
    Column("error_kind", String, nullable=True),
    Column("latency_ms", Float, nullable=False, server_default=text("0")),
    Column("ttft_ms", Float, nullable=True),
    Column("overhead_ms", Float, nullable=False, server_default=text("0")),
    Column("prompt_tokens", Integer, nullable=False, server_default=text("0")),
    Column("completion_tokens", Integer, nullable=False, server_default=text("0")),
    Column("cached_tokens", Integer, nullable=False, server_default=text("0")),
    Column("cost", Float, nullable=False, server_default=text("0")),
    Column("attempts", json_type(), nullable=False, server_default=text("'[]'")),
    Column("extra", json_type(), nullable=False, server_default=text("'{}'")),
    Column("client_request_id", String(128), nullable=True),
    # ok, client_error, refused, upstream_error, gateway_error or cancelled (interlock.telemetry.outcome)
    Column("outcome", String(16), nullable=True),
    Column("decisions", json_type(), nullable=False, server_default=text("'[]'")),
    # (column, created_at) pairs serve both "filter by column" and "… newest first" queries, so
    # no separate single-column index on model, status or key_id is needed.
    Index("ix_request_log_model_created_at", "model", "created_at"),
    Index("ix_request_log_status_created_at", "status", "created_at"),
    Index("ix_request_log_key_id_created_at", "key_id", "created_at"),
    # most requests carry no id of the caller's: only the rows that do are indexed
    Index(
        "ix_request_log_client_request_id",
        "client_request_id",
        sqlite_where=text("client_request_id IS NOT NULL"),
        postgresql_where=text("client_request_id IS NOT NULL"),
    ),
)

store_meta = Table(
    "store_meta",
    metadata,
    Column("name", String, primary_key=True),
    Column("value", BigInteger, nullable=False, server_default=text("0")),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False, index=True),
    Column("actor_key_id", String, nullable=True),
    Column("action", String, nullable=False),
    Column("target", String, nullable=False),
    Column("detail", json_type(), nullable=False, server_default=text("'{}'")),
    # the hash chain (store/audit_chain.py): position, who, the state before and after, and hashes
    Column("seq", BigInteger, nullable=False, unique=True),
    Column("actor", String, nullable=True),
    Column("before", json_type(), nullable=True),
    Column("after", json_type(), nullable=True),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("ix_audit_log_target_at", "target", "at"),
)

audit_chain_head = Table(
    "audit_chain_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False, server_default=text("0")),
    Column("hash", String(64), nullable=False),
)
"""One row (``id`` 1): the newest entry's position and hash. An append locks it (``FOR UPDATE``), so
appends from many processes line up one behind another."""

store_secrets = Table(
    "store_secrets",
    metadata,
    Column("name", String, primary_key=True),
    Column("value", String, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)
"""Secrets the gateway makes for itself once and every process shares (the dashboard's signing key)."""

ui_session_revocations = Table(
    "ui_session_revocations",
    metadata,
    Column("nonce", String(64), primary_key=True),
    Column("expires_at", UTCDateTime, nullable=False, index=True),
)
"""Dashboard sessions ended by signing out, kept until the session would have expired anyway."""
