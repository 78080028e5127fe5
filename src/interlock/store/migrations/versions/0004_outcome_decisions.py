"""Whose fault a request's result was, and why it went where it went: ``request_log.outcome`` and
``request_log.decisions``.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06

``outcome`` is one of ``ok``, ``client_error``, ``refused``, ``upstream_error``, ``gateway_error``,
``cancelled``. Rows written before it are classified from their status and error kind (a 429 whose
kind does not name the upstream counts as a refusal). ``decisions`` holds the routing decisions
(candidates, verdicts, scores, pick); older rows have none.

Self-contained on purpose: a migration describes the schema as it was when written, so it must not
import today's table definitions.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    """Add both columns and classify the rows already there."""
    op.add_column("request_log", sa.Column("outcome", sa.String(16), nullable=True))
    op.add_column(
        "request_log", sa.Column("decisions", _json(), server_default=sa.text("'[]'"), nullable=False)
    )
    log = sa.table(
        "request_log",
        sa.column("status", sa.Integer),
        sa.column("error_kind", sa.String),
        sa.column("outcome"),
    )
    upstream = sa.and_(
        sa.func.substr(log.c.error_kind, 1, 9) == "upstream_", log.c.error_kind != "upstream_rejected"
    )
    op.execute(
        log.update().values(
            outcome=sa.case(
                (log.c.status < 400, "ok"),
                (log.c.status == 499, "cancelled"),
                (upstream, "upstream_error"),
                (log.c.status == 429, "refused"),
                (log.c.status >= 500, "gateway_error"),
                else_="client_error",
            )
        )
    )


def downgrade() -> None:
    """Drop what :func:`upgrade` added."""
    with op.batch_alter_table("request_log") as batch:
        batch.drop_column("decisions")
        batch.drop_column("outcome")
