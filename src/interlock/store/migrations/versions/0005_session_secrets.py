"""Shared secrets (the dashboard's session-signing key) and revoked dashboard sessions.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07

Self-contained on purpose: a migration describes the schema as it was when written, so it must not
import today's table definitions.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Create ``store_secrets`` and ``ui_session_revocations`` (indexed by expiry, for purging)."""
    op.create_table(
        "store_secrets",
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("value", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_store_secrets"),
    )
    op.create_table(
        "ui_session_revocations",
        sa.Column("nonce", sa.String(64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("nonce", name="pk_ui_session_revocations"),
    )
    op.create_index("ix_ui_session_revocations_expires_at", "ui_session_revocations", ["expires_at"])


def downgrade() -> None:
    """Drop everything :func:`upgrade` created."""
    op.drop_index("ix_ui_session_revocations_expires_at", table_name="ui_session_revocations")
    op.drop_table("ui_session_revocations")
    op.drop_table("store_secrets")
