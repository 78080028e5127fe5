"""How the CLI talks to a running gateway's admin API: the shared options and one call helper."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Annotated, Any

import typer
from rich.console import Console

from interlock.config.loader import MASTER_KEY_ENV

__all__ = ["Gateway", "MasterKey", "admin_call", "query"]

console = Console()

Gateway = Annotated[str, typer.Option("--gateway", envvar="INTERLOCK_URL", help="Gateway base URL.")]
MasterKey = Annotated[
    str,
    typer.Option(
        "--master-key",
        "--key",
        envvar=MASTER_KEY_ENV,
        help="The master key, or any key whose role allows the command.",
        show_default=False,
    ),
]


def query(**params: Any) -> str:
    """``?a=1&b=2`` from the parameters that are set (``""`` when none is)."""
    given = {k: v for k, v in params.items() if v is not None and v is not False}
    return "?" + urllib.parse.urlencode(given, doseq=True) if given else ""


def admin_call(gateway: str, master_key: str, method: str, path: str, body: Any = None) -> Any:
    """``METHOD /admin/PATH`` with ``body`` as JSON; the decoded answer. On an error, print the
    gateway's message and exit 1."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        gateway.rstrip("/") + "/admin" + path,
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {master_key}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read())["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = exc.reason
        console.print(f"[red]error {exc.code}:[/red] {message}", highlight=False)
        raise typer.Exit(1) from None
    except urllib.error.URLError as exc:
        console.print(f"[red]error:[/red] cannot reach {gateway}: {exc.reason}", highlight=False)
        raise typer.Exit(1) from None
