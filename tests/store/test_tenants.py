"""Orgs, teams, users and memberships on SQLite and PostgreSQL: ids made by the store, names unique
among live rows, soft deletes that cascade, a revision bump per change, audited before and after."""

from __future__ import annotations

import pytest

from interlock.store import AuditActor, Store, StoreConflict

ACTOR = AuditActor("master", "master")


async def test_ids_are_made_by_the_store_and_names_are_unique(store: Store) -> None:
    tenants = store.tenants
    org = await tenants.create_org("  Acme  ")
    assert org.id.startswith("org_") and org.name == "Acme" and not org.disabled
    with pytest.raises(StoreConflict, match="name: a org with name 'Acme' exists already"):
        await tenants.create_org("Acme")
    team = await tenants.create_team(org.id, "search")
    assert team.id.startswith("team_") and team.org_id == org.id
    with pytest.raises(StoreConflict, match="name"):
        await tenants.create_team(org.id, "search")
    other = await tenants.create_org("Other")
    assert (await tenants.create_team(other.id, "search")).org_id == other.id  # unique per org only
    user = await tenants.create_user(org.id, "Ann@Acme.Test", "Ann")
    assert user.id.startswith("user_") and user.email == "ann@acme.test"
    with pytest.raises(StoreConflict, match="email"):
        await tenants.create_user(other.id, "ANN@acme.test", "Ann again")


async def test_parents_must_exist(store: Store) -> None:
    with pytest.raises(StoreConflict, match="org_id: no org 'org_nope'"):
        await store.tenants.create_team("org_nope", "t")
    with pytest.raises(StoreConflict, match="org_id"):
        await store.tenants.create_user("org_nope", "a@b.c", "a")
    with pytest.raises(ValueError, match="name"):
        await store.tenants.create_org("   ")


async def test_memberships_stay_inside_one_org(store: Store) -> None:
    tenants = store.tenants
    org, elsewhere = await tenants.create_org("a"), await tenants.create_org("b")
    team = await tenants.create_team(org.id, "t")
    user = await tenants.create_user(org.id, "u@a.test", "u")
    stranger = await tenants.create_user(elsewhere.id, "s@b.test", "s")
    await tenants.set_member(team.id, user.id, "developer")
    await tenants.set_member(team.id, user.id, "team_admin")  # a change of role, not a second row
    assert [(m.user_id, m.role) for m in await tenants.members(team.id)] == [(user.id, "team_admin")]
    with pytest.raises(StoreConflict, match="not in the org"):
        await tenants.set_member(team.id, stranger.id, "developer")
    with pytest.raises(ValueError, match="role"):
        await tenants.set_member(team.id, user.id, "admin")
    assert await tenants.remove_member(team.id, user.id)
    assert not await tenants.remove_member(team.id, user.id)


async def test_deleting_an_org_deletes_what_hangs_under_it(store: Store) -> None:
    tenants = store.tenants
    org = await tenants.create_org("gone")
    team = await tenants.create_team(org.id, "t")
    user = await tenants.create_user(org.id, "u@gone.test", "u")
    await tenants.set_member(team.id, user.id, "developer")
    assert await tenants.delete("org", org.id, actor=ACTOR)
    assert await tenants.get_org(org.id) is None and await tenants.get_team(team.id) is None
    assert await tenants.get_user(user.id) is None
    assert (await tenants.get_user(user.id, include_deleted=True)) is not None  # kept for the logs
    assert await tenants.members(team.id) == []
    assert not await tenants.delete("org", org.id)
    again = await tenants.create_org("gone")  # the name is free again
    assert again.id != org.id
    [entry] = await store.audit.list(action="org.delete")
    assert entry.detail == {"memberships_ended": 1, "teams_deleted": 1, "users_deleted": 1}
    assert entry.before["name"] == "gone" and entry.after is None


async def test_every_change_bumps_the_key_revision(store: Store) -> None:
    tenants = store.tenants
    revisions = [await store.keys.revision()]
    org = await tenants.create_org("o")
    revisions.append(await store.keys.revision())
    team = await tenants.create_team(org.id, "t")
    revisions.append(await store.keys.revision())
    user = await tenants.create_user(org.id, "u@o.test", "u")
    revisions.append(await store.keys.revision())
    await tenants.set_member(team.id, user.id, "developer")
    revisions.append(await store.keys.revision())
    await tenants.update_team(team.id, {"disabled": True})
    revisions.append(await store.keys.revision())
    await tenants.delete("user", user.id)
    revisions.append(await store.keys.revision())
    assert revisions == sorted(set(revisions)) and len(revisions) == 7


async def test_updates_are_audited_with_before_and_after(store: Store) -> None:
    tenants = store.tenants
    org = await tenants.create_org("o", actor=ACTOR)
    updated = await tenants.update_org(org.id, {"name": "renamed", "disabled": True}, actor=ACTOR)
    assert updated is not None and (updated.name, updated.disabled) == ("renamed", True)
    assert await tenants.update_org("org_nope", {"name": "x"}, actor=ACTOR) is None
    with pytest.raises(ValueError, match="cannot change org_id"):
        await tenants.update_org(org.id, {"org_id": "x"})
    update, create = await store.audit.list()
    assert (create.action, create.target, create.before) == ("org.create", org.id, None)
    assert create.after["name"] == "o"
    assert (update.action, update.actor_key_id, update.actor) == ("org.update", "master", "master")
    assert (update.before["name"], update.before["disabled"]) == ("o", False)
    assert (update.after["name"], update.after["disabled"]) == ("renamed", True)


async def test_keys_audited_and_filtered_by_owner(store: Store) -> None:
    org = await store.tenants.create_org("o")
    team = await store.tenants.create_team(org.id, "t")
    service, plaintext = await store.keys.create("svc", team_id=team.id, models=["gpt-4*"], actor=ACTOR)
    loose, _ = await store.keys.create("loose")
    assert [k.id for k in await store.keys.list(team_id=team.id)] == [service.id]
    assert {k.id for k in await store.keys.list(team_id=team.id, key_ids=[loose.id])} == {
        service.id,
        loose.id,
    }
    changed = await store.keys.update(service.id, {"pools": ["gpu"], "roles": ["team_admin"]}, actor=ACTOR)
    assert changed is not None and changed.pools == ("gpu",) and changed.models == ("gpt-4*",)
    with pytest.raises(ValueError, match="cannot change team_id"):
        await store.keys.update(service.id, {"team_id": "x"})
    assert await store.keys.revoke(service.id, actor=ACTOR)
    assert await store.keys.update(service.id, {"name": "x"}) is None  # revoked keys do not change
    actions = [e.action for e in await store.audit.list(target=service.id)]
    assert actions == ["key.revoke", "key.update", "key.create"]
    [update] = await store.audit.list(action="key.update")
    assert update.before["pools"] == [] and update.after["pools"] == ["gpu"]
    entries = str(await store.audit.list())
    assert "key_hash" not in update.after and plaintext not in entries and plaintext[12:] not in entries
