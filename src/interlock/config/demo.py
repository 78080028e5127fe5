"""The embedded default: what ``interlock up`` serves when no config file is given.

A demo fleet of simulated backends in two pools — a cheap, fast "cpu" model and a premium "gpu"
model — so everything works offline on first run, with a tiered alias (``auto``), a monthly and a
per-key daily budget, and a per-key rate limit to see governance at work. Real providers join when
their API keys are set.

The demo's master key is generated at the first start and shown that once; only its SHA-256 is
kept, in ``.interlock/master.key.sha256``. Later starts authenticate against the hash and say the
key is set. ``interlock keys rotate-master`` (or deleting the hash file, then starting again) makes a
new one.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from interlock.config.loader import MASTER_KEY_ENV
from interlock.config.secrets import hash_secret, is_sha256_hex, master_key_problem

__all__ = ["DEMO_DIR", "HASH_FILE", "MasterKey", "demo_settings", "ensure_master_key", "rotate_master_key"]

DEMO_DIR = Path(".interlock")
HASH_FILE = "master.key.sha256"
_LEGACY_FILE = "master.key"  # the plaintext key earlier versions kept; replaced by its hash


@dataclass(frozen=True, slots=True)
class MasterKey:
    """Where the master key comes from at start-up, and whether it may be shown (once)."""

    source: Literal["environment", "generated", "stored"]
    sha256: str
    new_key: str | None = None
    """The plaintext, only when it was generated (or moved out of a plaintext file) just now."""


def ensure_master_key(directory: Path = DEMO_DIR, env: Mapping[str, str] | None = None) -> MasterKey:
    """``INTERLOCK_MASTER_KEY`` if set; else the stored hash; else a new key, kept as its hash.

    Raises ``ValueError`` (with a message for the operator, never the key) for a weak key in the
    environment or an unreadable hash file.
    """
    environ = os.environ if env is None else env
    configured = environ.get(MASTER_KEY_ENV)
    if configured:
        problem = master_key_problem(configured)
        if problem:
            raise ValueError(f"{MASTER_KEY_ENV} {problem}")
        return MasterKey("environment", hash_secret(configured))
    stored = _read_hash(directory / HASH_FILE)
    if stored is not None:
        return MasterKey("stored", stored)
    legacy = directory / _LEGACY_FILE
    if legacy.exists():
        key = legacy.read_text(encoding="utf-8").strip()
        if not master_key_problem(key):
            _write_hash(directory, hash_secret(key), exclusive=False)
            legacy.unlink()
            return MasterKey("generated", hash_secret(key), new_key=key)
        legacy.unlink()  # too weak to keep: a new key replaces it
    return _generate(directory, exclusive=True)


def rotate_master_key(directory: Path = DEMO_DIR) -> str:
    """Make a new demo master key, replace the stored hash, and return the key (show it once)."""
    legacy = directory / _LEGACY_FILE
    if legacy.exists():
        legacy.unlink()
    generated = _generate(directory, exclusive=False)
    assert generated.new_key is not None
    return generated.new_key


def _generate(directory: Path, *, exclusive: bool) -> MasterKey:
    key = "sk-il-master-" + secrets.token_urlsafe(32)
    digest = hash_secret(key)
    if not _write_hash(directory, digest, exclusive=exclusive):
        # another `interlock up` in this directory made one first: use that
        stored = _read_hash(directory / HASH_FILE)
        assert stored is not None
        return MasterKey("stored", stored)
    return MasterKey("generated", digest, new_key=key)


def _write_hash(directory: Path, digest: str, *, exclusive: bool) -> bool:
    """Write the hash file (mode 0600) whole, atomically; ``False`` if ``exclusive`` and it exists."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / HASH_FILE
    temporary = directory / f"{HASH_FILE}.{secrets.token_hex(4)}.tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(digest + "\n")
    try:
        if not exclusive:
            os.replace(temporary, target)
            return True
        os.link(temporary, target)  # fails if it exists: two first starts agree on one key
    except FileExistsError:
        return False
    finally:
        temporary.unlink(missing_ok=True)
    return True


def _read_hash(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="utf-8").strip().lower()
    except FileNotFoundError:
        return None
    if not is_sha256_hex(text):
        raise ValueError(
            f"{path} does not hold a SHA-256 digest; delete it to have a new master key generated"
        )
    return text


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
    return {
        "store": store,
        "providers": providers,
        "pools": pools,
        "models": models,
        # a tiered alias, a budget and a limit to try (docs/governance.md); ample for a demo
        "tiers": {"auto": {"economy": "fast", "standard": "chat", "premium": "premium"}},
        "budgets": {
            "max_request_usd": 1.0,
            "rules": [
                {"name": "demo-monthly", "scope": "global", "period": "month", "limit_usd": 100},
                {"name": "per-key-daily", "scope": "key", "period": "day", "limit_usd": 10},
            ],
        },
        "limits": {"rules": [{"scope": "key", "requests_per_min": 6000, "tokens_per_min": 10_000_000}]},
    }
