"""Key resolution: a key works only while its user, team and org are live, its personal team key
only while its user is still a member; roles and allow-lists come out as stored."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from interlock.governance.principals import Directory, resolve
from interlock.store import KeyRecord, Membership, OrgRecord, TeamRecord, UserRecord

NOW = datetime(2030, 1, 1, tzinfo=UTC)
ORG = OrgRecord("org_1", "acme", NOW)
TEAM = TeamRecord("team_1", "org_1", "search", NOW)
USER = UserRecord("user_1", "org_1", "ann@acme.test", "Ann", NOW)


def directory(
    *,
    org: OrgRecord = ORG,
    team: TeamRecord = TEAM,
    user: UserRecord = USER,
    members: tuple[Membership, ...] = (Membership("team_1", "user_1", "team_admin", NOW),),
) -> Directory:
    return Directory(
        orgs={org.id: org},
        teams={team.id: team},
        users={user.id: user},
        members={(m.team_id, m.user_id): m.role for m in members},
    )


def key(**fields: object) -> KeyRecord:
    values: dict[str, object] = {"id": "key_1", "name": "k", "key_prefix": "sk-il-abc", "created_at": NOW}
    values.update(fields)
    return KeyRecord(**values)  # type: ignore[arg-type]


def test_a_personal_team_key_resolves_with_its_owner_and_lists() -> None:
    expires = NOW + timedelta(days=1)
    principal = resolve(
        key(user_id="user_1", team_id="team_1", roles=("team_admin",), models=("gpt-4*",), pools=("gpu",),
            expires_at=expires),
        directory(),
    )  # fmt: skip
    assert principal is not None
    assert (principal.user_id, principal.team_id, principal.org_id, principal.roles) == (
        "user_1",
        "team_1",
        "org_1",
        ("team_admin",),
    )
    assert principal.models.allows("gpt-4o") and not principal.models.allows("claude")
    assert principal.pools.allows("gpu") and not principal.pools.allows(None)
    assert principal.expires_at == expires.timestamp()


def test_a_disabled_or_deleted_owner_stops_the_key() -> None:
    team_key = key(team_id="team_1")
    personal = key(user_id="user_1")
    assert resolve(team_key, directory()) is not None and resolve(personal, directory()) is not None
    gone = replace(TEAM, deleted_at=NOW)
    assert resolve(team_key, directory(team=replace(TEAM, disabled=True))) is None
    assert resolve(team_key, directory(team=gone)) is None
    assert resolve(personal, directory(user=replace(USER, disabled=True))) is None
    for org in (replace(ORG, disabled=True), replace(ORG, deleted_at=NOW)):
        assert resolve(team_key, directory(org=org)) is None
        assert resolve(personal, directory(org=org)) is None


def test_leaving_the_team_stops_a_personal_team_key_and_demotion_lowers_its_role() -> None:
    record = key(user_id="user_1", team_id="team_1", roles=("team_admin",))
    assert resolve(record, directory(members=())) is None
    demoted = resolve(record, directory(members=(Membership("team_1", "user_1", "developer", NOW),)))
    assert demoted is not None and demoted.roles == ("developer",)


def test_unknown_roles_and_team_admins_without_a_team_act_as_developers() -> None:
    assert resolve(key(roles=("superuser",)), directory()).roles == ("developer",)  # type: ignore[union-attr]
    assert resolve(key(roles=("team_admin",)), directory()).roles == ("developer",)  # type: ignore[union-attr]
    assert resolve(key(roles=("viewer",)), directory()).roles == ("viewer",)  # type: ignore[union-attr]


def test_owner_ids_from_before_teams_existed_do_not_stop_a_key() -> None:
    legacy = resolve(key(team_id="billing", user_id="u-42"), directory())
    assert legacy is not None and (legacy.team_id, legacy.user_id) == ("billing", "u-42")


def test_a_revoked_key_never_resolves() -> None:
    assert resolve(key(revoked_at=NOW), directory()) is None
