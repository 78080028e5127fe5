"""Interlock: one OpenAI-compatible API over every model backend.

The public surface for embedding the gateway in a program; everything else is internal and may
change. Run it with ``interlock up``; see the README.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from interlock.config.loader import ConfigError, load_settings, parse_settings
from interlock.config.schema import Settings
from interlock.core.errors import GatewayError

if TYPE_CHECKING:
    from interlock.server.app import create_app

__all__ = [
    "ConfigError",
    "GatewayError",
    "Settings",
    "__version__",
    "create_app",
    "load_settings",
    "parse_settings",
]

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # the server pulls in the web stack; importing interlock.store or the CLI should not
    if name == "create_app":
        from interlock.server.app import create_app

        return create_app
    raise AttributeError(f"module 'interlock' has no attribute {name!r}")
