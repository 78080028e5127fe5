"""``interlock orgs|teams|users …``: the tenant tree, through a running gateway's admin API.

Each command is one admin API call (``/admin/orgs``, ``/admin/teams``, ``/admin/users`` and
``/admin/teams/{id}/members``), so the rules and messages are the API's own.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from interlock.cli.admin_client import Gateway, MasterKey, admin_call, console, query

__all__ = ["register"]

orgs_app = typer.Typer(help="Create, list, change and delete organizations.", no_args_is_help=True)
teams_app = typer.Typer(
    help="Create, list, change and delete teams, and their members.", no_args_is_help=True
)
users_app = typer.Typer(help="Create, list, change and delete users.", no_args_is_help=True)

GATEWAY = "http://127.0.0.1:4000"
Id = Annotated[str, typer.Argument(help="The id (org_…, team_…, user_…).")]
NewName = Annotated[str | None, typer.Option("--name", help="A new name.")]
Disabled = Annotated[
    bool | None,
    typer.Option("--disable/--enable", help="Stop (or restart) every key under it.", show_default=False),
]


def register(app: typer.Typer) -> None:
    app.add_typer(orgs_app, name="orgs")
    app.add_typer(teams_app, name="teams")
    app.add_typer(users_app, name="users")


def _table(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> None:
    table = Table(*columns)
    for row in rows:
        table.add_row(
            *(
                "" if row.get(c) is None else str(row[c])[:19] if c.endswith("_at") else str(row[c])
                for c in columns
            )
        )
    console.print(table)


def _created(record: dict[str, Any]) -> None:
    console.print(f"id: {record['id']}", highlight=False)


def _change(name: str | None, disabled: bool | None, **more: Any) -> dict[str, Any]:
    body = {k: v for k, v in {"name": name, "disabled": disabled, **more}.items() if v is not None}
    if not body:
        raise typer.BadParameter("nothing to change: give an option such as --name or --disable")
    return body


# orgs


@orgs_app.command("create")
def org_create(name: str, gateway: Gateway = GATEWAY, master_key: MasterKey = "") -> None:
    """Create an organization; print its id."""
    _created(admin_call(gateway, master_key, "POST", "/orgs", {"name": name}))


@orgs_app.command("list")
def org_list(gateway: Gateway = GATEWAY, master_key: MasterKey = "") -> None:
    """List the organizations your key may see."""
    _table(admin_call(gateway, master_key, "GET", "/orgs")["data"], ("id", "name", "disabled", "created_at"))


@orgs_app.command("update")
def org_update(
    org_id: Id,
    gateway: Gateway = GATEWAY,
    master_key: MasterKey = "",
    name: NewName = None,
    disabled: Disabled = None,
) -> None:
    """Rename an organization, or disable (enable) it and every key under it."""
    admin_call(gateway, master_key, "PATCH", f"/orgs/{org_id}", _change(name, disabled))
    console.print(f"updated {org_id}", highlight=False)


@orgs_app.command("delete")
def org_delete(org_id: Id, gateway: Gateway = GATEWAY, master_key: MasterKey = "") -> None:
    """Delete an organization, its teams and users; every key under them stops working."""
    admin_call(gateway, master_key, "DELETE", f"/orgs/{org_id}")
    console.print(f"deleted {org_id}", highlight=False)


# teams


@teams_app.command("create")
def team_create(
    name: str,
    org: Annotated[str, typer.Option("--org", help="The organization's id.")],
    gateway: Gateway = GATEWAY,
    master_key: MasterKey = "",
) -> None:
    """Create a team in an organization; print its id."""
    _created(admin_call(gateway, master_key, "POST", "/teams", {"org_id": org, "name": name}))


@teams_app.command("list")
def team_list(
    gateway: Gateway = GATEWAY,
    master_key: MasterKey = "",
    org: Annotated[str | None, typer.Option("--org", help="Only this organization's teams.")] = None,
) -> None:
    """List the teams your key may see."""
    listing = admin_call(gateway, master_key, "GET", "/teams" + query(org_id=org))
    _table(listing["data"], ("id", "org_id", "name", "disabled", "created_at"))


@teams_app.command("update")
def team_update(
    team_id: Id,
    gateway: Gateway = GATEWAY,
    master_key: MasterKey = "",
    name: NewName = None,
    disabled: Disabled = None,
) -> None:
    """Rename a team, or disable (enable) it and its keys."""
    admin_call(gateway, master_key, "PATCH", f"/teams/{team_id}", _change(name, disabled))
    console.print(f"updated {team_id}", highlight=False)


@teams_app.command("delete")
def team_delete(team_id: Id, gateway: Gateway = GATEWAY, master_key: MasterKey = "") -> None:
    """Delete a team and end its memberships; its keys stop working."""
    admin_call(gateway, master_key, "DELETE", f"/teams/{team_id}")
    console.print(f"deleted {team_id}", highlight=False)


@teams_app.command("members")
def team_members(team_id: Id, gateway: Gateway = GATEWAY, master_key: MasterKey = "") -> None:
    """List a team's members and their roles."""
    listing = admin_call(gateway, master_key, "GET", f"/teams/{team_id}/members")
    _table(listing["data"], ("user_id", "role", "created_at"))


@teams_app.command("add-member")
def team_add_member(
    team_id: Id,
    user_id: Annotated[str, typer.Argument(help="The user's id.")],
    role: Annotated[str, typer.Option("--role", help="team_admin or developer.")] = "developer",
    gateway: Gateway = GATEWAY,
    master_key: MasterKey = "",
) -> None:
    """Make a user a member of a team (or change their role there)."""
    admin_call(gateway, master_key, "PUT", f"/teams/{team_id}/members/{user_id}", {"role": role})
    console.print(f"{user_id} is a {role} of {team_id}", highlight=False)


@teams_app.command("remove-member")
def team_remove_member(
    team_id: Id,
    user_id: Annotated[str, typer.Argument(help="The user's id.")],
    gateway: Gateway = GATEWAY,
    master_key: MasterKey = "",
) -> None:
    """End a user's membership of a team; their keys for that team stop working."""
    admin_call(gateway, master_key, "DELETE", f"/teams/{team_id}/members/{user_id}")
    console.print(f"removed {user_id} from {team_id}", highlight=False)


# users


@users_app.command("create")
def user_create(
    email: str,
    org: Annotated[str, typer.Option("--org", help="The organization's id.")],
    name: Annotated[str | None, typer.Option("--name", help="Full name (default: the email).")] = None,
    gateway: Gateway = GATEWAY,
    master_key: MasterKey = "",
) -> None:
    """Create a user in an organization; print their id."""
    body = {"org_id": org, "email": email, "name": name or email}
    _created(admin_call(gateway, master_key, "POST", "/users", body))


@users_app.command("list")
def user_list(
    gateway: Gateway = GATEWAY,
    master_key: MasterKey = "",
    org: Annotated[str | None, typer.Option("--org", help="Only this organization's users.")] = None,
    team: Annotated[str | None, typer.Option("--team", help="Only this team's members.")] = None,
) -> None:
    """List the users your key may see."""
    listing = admin_call(gateway, master_key, "GET", "/users" + query(org_id=org, team_id=team))
    _table(listing["data"], ("id", "org_id", "email", "name", "disabled", "created_at"))


@users_app.command("update")
def user_update(
    user_id: Id,
    gateway: Gateway = GATEWAY,
    master_key: MasterKey = "",
    name: NewName = None,
    email: Annotated[str | None, typer.Option("--email", help="A new email.")] = None,
    disabled: Disabled = None,
) -> None:
    """Change a user's name or email, or disable (enable) them and their personal keys."""
    admin_call(gateway, master_key, "PATCH", f"/users/{user_id}", _change(name, disabled, email=email))
    console.print(f"updated {user_id}", highlight=False)


@users_app.command("delete")
def user_delete(user_id: Id, gateway: Gateway = GATEWAY, master_key: MasterKey = "") -> None:
    """Delete a user and end their memberships; their personal keys stop working."""
    admin_call(gateway, master_key, "DELETE", f"/users/{user_id}")
    console.print(f"deleted {user_id}", highlight=False)
