"""Organizations, teams, users and memberships; key allow-lists and one role per key; the audit
log's hash chain.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-14

Existing keys keep working: each gets one role (``admin`` if it held ``admin``, else ``operator``
or ``viewer`` if it held one of those, else ``developer``). A ``team_id`` or ``user_id`` a key was
given before this revision names no row of the new tables; such a key is treated as having no
owner (it is not refused). Existing audit entries are chained in id order, so the chain covers them.

Self-contained on purpose: a migration describes the schema as it was when written, so it must not
import today's table definitions (the hash below is a copy of ``store.audit_chain``'s, as of now).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import orjson
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None

_GENESIS = "0" * 64
_LIVE = sa.text("deleted_at IS NULL")


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _tenant_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("disabled", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("metadata", _json(), server_default=sa.text("'{}'"), nullable=False),
    ]


def upgrade() -> None:
    """Create the tenant tables, extend ``api_keys`` and chain ``audit_log``."""
    _create_tenants()
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("models", _json(), server_default=sa.text("'[]'"), nullable=False))
        batch.add_column(sa.Column("pools", _json(), server_default=sa.text("'[]'"), nullable=False))
    op.create_index("ix_api_keys_team_id", "api_keys", ["team_id"])
    op.create_index("ix_api_keys_user_id", "api_keys", ["user_id"])
    _one_role_per_key()
    _chain_audit_log()


def _create_tenants() -> None:
    op.create_table(
        "orgs",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        *_tenant_columns(),
        sa.PrimaryKeyConstraint("id", name="pk_orgs"),
    )
    op.create_index(
        "uq_orgs_name_live", "orgs", ["name"], unique=True, sqlite_where=_LIVE, postgresql_where=_LIVE
    )
    op.create_table(
        "teams",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("org_id", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        *_tenant_columns(),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"], name="fk_teams_org_id"),
        sa.PrimaryKeyConstraint("id", name="pk_teams"),
    )
    op.create_index("ix_teams_org_id", "teams", ["org_id"])
    op.create_index(
        "uq_teams_org_id_name_live",
        "teams",
        ["org_id", "name"],
        unique=True,
        sqlite_where=_LIVE,
        postgresql_where=_LIVE,
    )
    op.create_table(
        "users",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("org_id", sa.String(), nullable=False),
        sa.Column("email", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        *_tenant_columns(),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"], name="fk_users_org_id"),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
    )
    op.create_index("ix_users_org_id", "users", ["org_id"])
    op.create_index(
        "uq_users_email_live", "users", ["email"], unique=True, sqlite_where=_LIVE, postgresql_where=_LIVE
    )
    op.create_table(
        "team_members",
        sa.Column("team_id", sa.String(), nullable=False),
        sa.Column("user_id", sa.String(), nullable=False),
        sa.Column("role", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["team_id"], ["teams.id"], name="fk_team_members_team_id"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_team_members_user_id"),
        sa.PrimaryKeyConstraint("team_id", "user_id", name="pk_team_members"),
    )
    op.create_index("ix_team_members_user_id", "team_members", ["user_id"])


def _one_role(roles: Any) -> str:
    held = set(roles) if isinstance(roles, list) else set()
    for role in ("admin", "operator", "viewer"):
        if role in held:
            return role
    return "developer"


def _one_role_per_key() -> None:
    keys = sa.table("api_keys", sa.column("id", sa.String()), sa.column("roles", _json()))
    conn = op.get_bind()
    for key_id, roles in conn.execute(sa.select(keys.c.id, keys.c.roles)).all():
        conn.execute(sa.update(keys).where(keys.c.id == key_id).values(roles=[_one_role(roles)]))


def _normalise(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _normalise(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalise(v) for v in value]
    return value


def _hash(fields: dict[str, Any]) -> str:
    at: datetime = fields["at"]
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    content = {
        "seq": fields["seq"],
        "at": at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "actor_key_id": fields["actor_key_id"],
        "actor": None,
        "action": fields["action"],
        "target": fields["target"],
        "detail": _normalise(fields["detail"] or {}),
        "before": None,
        "after": None,
        "prev_hash": fields["prev_hash"],
    }
    return hashlib.sha256(orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _chain_audit_log() -> None:
    with op.batch_alter_table("audit_log") as batch:
        batch.add_column(sa.Column("seq", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("actor", sa.String(), nullable=True))
        batch.add_column(sa.Column("before", _json(), nullable=True))
        batch.add_column(sa.Column("after", _json(), nullable=True))
        batch.add_column(sa.Column("prev_hash", sa.String(64), nullable=True))
        batch.add_column(sa.Column("hash", sa.String(64), nullable=True))
    log = sa.table(
        "audit_log",
        sa.column("id", sa.Integer()),
        sa.column("at", sa.DateTime(timezone=True)),
        sa.column("actor_key_id", sa.String()),
        sa.column("action", sa.String()),
        sa.column("target", sa.String()),
        sa.column("detail", _json()),
        sa.column("seq", sa.BigInteger()),
        sa.column("prev_hash", sa.String()),
        sa.column("hash", sa.String()),
    )
    conn = op.get_bind()
    rows = conn.execute(
        sa.select(log.c.id, log.c.at, log.c.actor_key_id, log.c.action, log.c.target, log.c.detail).order_by(
            log.c.id
        )
    ).all()
    prev, seq = _GENESIS, 0
    for row in rows:
        seq += 1
        fields = {**row._mapping, "seq": seq, "prev_hash": prev}
        digest = _hash(fields)
        conn.execute(sa.update(log).where(log.c.id == row.id).values(seq=seq, prev_hash=prev, hash=digest))
        prev = digest
    with op.batch_alter_table("audit_log") as batch:
        batch.alter_column("seq", existing_type=sa.BigInteger(), nullable=False)
        batch.alter_column("prev_hash", existing_type=sa.String(64), nullable=False)
        batch.alter_column("hash", existing_type=sa.String(64), nullable=False)
        batch.create_unique_constraint("uq_audit_log_seq", ["seq"])
    head = op.create_table(
        "audit_chain_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_chain_head"),
    )
    conn.execute(sa.insert(head).values(id=1, seq=seq, hash=prev))


def downgrade() -> None:
    """Drop everything :func:`upgrade` added (key roles stay as they were made)."""
    op.drop_table("audit_chain_head")
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_constraint("uq_audit_log_seq", type_="unique")
        for column in ("hash", "prev_hash", "after", "before", "actor", "seq"):
            batch.drop_column(column)
    op.drop_index("ix_api_keys_user_id", table_name="api_keys")
    op.drop_index("ix_api_keys_team_id", table_name="api_keys")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("pools")
        batch.drop_column("models")
    op.drop_index("ix_team_members_user_id", table_name="team_members")
    op.drop_table("team_members")
    op.drop_index("uq_users_email_live", table_name="users")
    op.drop_index("ix_users_org_id", table_name="users")
    op.drop_table("users")
    op.drop_index("uq_teams_org_id_name_live", table_name="teams")
    op.drop_index("ix_teams_org_id", table_name="teams")
    op.drop_table("teams")
    op.drop_index("uq_orgs_name_live", table_name="orgs")
    op.drop_table("orgs")
