"""Pin the public surface: what each public module exports, and that every export resolves."""

from __future__ import annotations

import importlib

import pytest

PUBLIC = {
    "interlock": {
        "ConfigError",
        "GatewayError",
        "Settings",
        "__version__",
        "create_app",
        "load_settings",
        "parse_settings",
    },
    "interlock.core.errors": {
        "AuthenticationFailed",
        "BodyTooLarge",
        "BudgetExceeded",
        "Conflict",
        "GatewayError",
        "InvalidRequest",
        "ModelNotAllowed",
        "ModelNotFound",
        "NotFound",
        "PermissionDenied",
        "PoolNotAllowed",
        "RateLimited",
        "ServiceUnavailable",
        "UpstreamBadResponse",
        "UpstreamConnectError",
        "UpstreamError",
        "UpstreamRateLimited",
        "UpstreamRejected",
        "UpstreamStreamBroken",
        "UpstreamTimeout",
    },
    "interlock.core.context": {
        "CLIENT_CLOSED",
        "MASTER",
        "Attempt",
        "Chunk",
        "Chunks",
        "DeploymentInfo",
        "Front",
        "Hold",
        "Operation",
        "Principal",
        "Priority",
        "Reply",
        "RequestContext",
        "Usage",
        "has_output",
    },
    "interlock.core.access": {"EVERYTHING", "AllowList", "is_glob"},
    "interlock.core.decision": {"Candidate", "Decision", "Verdict"},
    "interlock.core.tracing": {"NO_TRACER", "AttemptSpan", "Tracer"},
    "interlock.gateway.chain": {"Next", "Stage", "build_chain"},
    "interlock.providers.base": {"Provider", "UpstreamReply"},
    "interlock.routing.snapshot": {"Deployment", "ModelRoute", "RoutingSnapshot", "SnapshotRef"},
}


@pytest.mark.parametrize("module_name", sorted(PUBLIC))
def test_exported_members(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert set(module.__all__) == PUBLIC[module_name]
    for name in module.__all__:
        assert hasattr(module, name), f"{module_name}.{name} is exported but missing"


def test_every_module_declares_its_surface() -> None:
    import pkgutil

    import interlock

    missing = []
    for info in pkgutil.walk_packages(interlock.__path__, "interlock."):
        if info.name.endswith("__main__") or ".migrations" in info.name or info.ispkg:
            continue
        module = importlib.import_module(info.name)
        if not hasattr(module, "__all__"):
            missing.append(info.name)
    assert missing == []
