"""The caller's own request id, kept beside the gateway's: ``request_log.client_request_id``.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02

``request_id`` used to be the caller's ``x-request-id`` when it looked sane; a caller could then
reuse an id to keep requests out of the log. The gateway now always assigns ``request_id`` and
keeps what the caller sent here, for correlation only.

Self-contained on purpose: a migration describes the schema as it was when written, so it must not
import today's table definitions.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Add the nullable column and a partial index over the rows that have one (existing rows keep
    NULL; most requests carry no id, and their inserts should not pay for an index entry)."""
    op.add_column("request_log", sa.Column("client_request_id", sa.String(128), nullable=True))
    present = sa.text("client_request_id IS NOT NULL")
    op.create_index(
        "ix_request_log_client_request_id",
        "request_log",
        ["client_request_id"],
        sqlite_where=present,
        postgresql_where=present,
    )


def downgrade() -> None:
    """Drop what :func:`upgrade` added."""
    op.drop_index("ix_request_log_client_request_id", table_name="request_log")
    with op.batch_alter_table("request_log") as batch:
        batch.drop_column("client_request_id")
