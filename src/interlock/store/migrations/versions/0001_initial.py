"""Initial schema: API keys, the request log and the store's own counters.

Revision ID: 0001
Revises:
Create Date: 2025-01-01

Self-contained on purpose: a migration describes the schema as it was when written, so it must not
import today's table definitions.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    """Create ``api_keys``, ``request_log`` and ``store_meta`` (with ``keys_revision`` = 0)."""
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("key_prefix", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("user_id", sa.String(), nullable=True),
        sa.Column("team_id", sa.String(), nullable=True),
        sa.Column("org_id", sa.String(), nullable=True),
        sa.Column("roles", _json(), server_default=sa.text("'[]'"), nullable=False),
        sa.Column("metadata", _json(), server_default=sa.text("'{}'"), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
    )
    op.create_index("ix_api_keys_key_hash", "api_keys", ["key_hash"], unique=True)

    op.create_table(
        "request_log",
        sa.Column("request_id", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("key_id", sa.String(), nullable=True),
        sa.Column("user_id", sa.String(), nullable=True),
        sa.Column("team_id", sa.String(), nullable=True),
        sa.Column("model", sa.String(), nullable=False),
        sa.Column("deployment", sa.String(), nullable=True),
        sa.Column("provider", sa.String(), nullable=True),
        sa.Column("upstream_model", sa.String(), nullable=True),
        sa.Column("operation", sa.String(), nullable=False),
        sa.Column("stream", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("error_kind", sa.String(), nullable=True),
        sa.Column("latency_ms", sa.Float(), server_default=sa.text("0"), nullable=False),
        sa.Column("ttft_ms", sa.Float(), nullable=True),
        sa.Column("overhead_ms", sa.Float(), server_default=sa.text("0"), nullable=False),
        sa.Column("prompt_tokens", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("completion_tokens", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("cached_tokens", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("cost", sa.Float(), server_default=sa.text("0"), nullable=False),
        sa.Column("attempts", _json(), server_default=sa.text("'[]'"), nullable=False),
        sa.Column("extra", _json(), server_default=sa.text("'{}'"), nullable=False),
        sa.PrimaryKeyConstraint("request_id", name="pk_request_log"),
    )
    op.create_index("ix_request_log_created_at", "request_log", ["created_at"])
    op.create_index("ix_request_log_model_created_at", "request_log", ["model", "created_at"])
    op.create_index("ix_request_log_status_created_at", "request_log", ["status", "created_at"])
    op.create_index("ix_request_log_key_id_created_at", "request_log", ["key_id", "created_at"])

    store_meta = op.create_table(
        "store_meta",
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("value", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_store_meta"),
    )
    op.bulk_insert(store_meta, [{"name": "keys_revision", "value": 0}])


def downgrade() -> None:
    """Drop everything :func:`upgrade` created."""
    op.drop_table("store_meta")
    op.drop_index("ix_request_log_key_id_created_at", table_name="request_log")
    op.drop_index("ix_request_log_status_created_at", table_name="request_log")
    op.drop_index("ix_request_log_model_created_at", table_name="request_log")
    op.drop_index("ix_request_log_created_at", table_name="request_log")
    op.drop_table("request_log")
    op.drop_index("ix_api_keys_key_hash", table_name="api_keys")
    op.drop_table("api_keys")
