"""The embedded default: what ``interlock up`` serves when no config file is given.

A demo fleet of simulated backends in two pools — a cheap, fast "cpu" model and a premium "gpu"
model — so everything works offline on first run. Real providers join when their API keys are set.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["DEMO_DIR", "demo_settings", "ensure_master_key"]

DEMO_DIR = Path(".interlock")


def ensure_master_key(directory: Path = DEMO_DIR, env: Mapping[str, str] | None = None) -> str:
    """``INTERLOCK_MASTER_KEY`` if set, else the key kept in ``.interlock/master.key`` (made once)."""
    environ = os.environ if env is None else env
    if environ.get("INTERLOCK_MASTER_KEY"):
        return environ["INTERLOCK_MASTER_KEY"]
    path = directory / "master.key"
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    directory.mkdir(parents=True, exist_ok=True)
    key = "sk-il-master-" + secrets.token_urlsafe(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(key + "\n")
    return key


def demo_settings(
    cpu_url: str,
    gpu_url: str,
    *,
    store: str = "sqlite:///.interlock/interlock.db",
    env: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The demo config as plain data, without the master key (that comes from the environment)."""
    environ = os.environ if env is None else env
    providers: dict[str, Any] = {
        "sim-cpu": {"kind": "openai", "base_url": cpu_url},
        "sim-gpu": {"kind": "openai", "base_url": gpu_url},
    }
    pools = {
        "cpu": {"labels": {"hardware": "cpu", "cost": "low"}, "description": "CPU nodepool"},
        "gpu": {"labels": {"hardware": "gpu", "cost": "premium"}, "description": "GPU nodepool"},
    }
    fast = {
        "provider": "sim-cpu",
        "model": "sim-small",
        "pool": "cpu",
        "price": {"input": 0.05, "output": 0.2},
    }
    premium = {
        "provider": "sim-gpu",
        "model": "sim-large",
        "pool": "gpu",
        "price": {"input": 2.5, "output": 10.0},
    }
    models: dict[str, Any] = {
        "fast": {"deployments": [fast], "description": "cheap, fast model on the CPU pool"},
        "premium": {"deployments": [premium], "description": "premium model on the GPU pool"},
        "chat": {
            "deployments": [dict(fast, weight=3), premium],
            "description": "both pools, weighted 3:1 towards the cheap one",
        },
        "embed": {
            "kind": "embeddings",
            "deployments": [dict(fast, model="sim-embed", price={"input": 0.02, "output": 0.0})],
        },
    }
    if environ.get("OPENAI_API_KEY"):
        providers["openai"] = {"kind": "openai", "api_key": environ["OPENAI_API_KEY"]}
        models["gpt-4o-mini"] = {
            "deployments": [
                {"provider": "openai", "model": "gpt-4o-mini", "price": {"input": 0.15, "output": 0.6}}
            ]
        }
        models["text-embedding-3-small"] = {
            "kind": "embeddings",
            "deployments": [
                {"provider": "openai", "model": "text-embedding-3-small", "price": {"input": 0.02}}
            ],
        }
    if environ.get("ANTHROPIC_API_KEY"):
        providers["anthropic"] = {"kind": "anthropic", "api_key": environ["ANTHROPIC_API_KEY"]}
        models["claude-sonnet"] = {
            "deployments": [
                {
                    "provider": "anthropic",
                    "model": "claude-sonnet-4-5",
                    "price": {"input": 3.0, "output": 15.0},
                }
            ]
        }
    return {"store": store, "providers": providers, "pools": pools, "models": models}
