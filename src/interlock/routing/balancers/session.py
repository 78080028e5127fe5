"""Session affinity: requests carrying the same session id go to the same deployment."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from interlock.routing.balancers.base import Balancer, RouteHints
from interlock.routing.snapshot import Deployment

__all__ = ["SessionAffinity"]


class SessionAffinity:
    """Rendezvous hashing of the session id over the candidates: a session stays put while its
    deployment is a candidate, and only the sessions of a deployment that leaves move elsewhere.
    Requests without a session go to ``fallback``."""

    def __init__(self, fallback: Balancer) -> None:
        self._fallback = fallback

    def choose(self, candidates: Sequence[Deployment], hints: RouteHints) -> Deployment:
        if not hints.session or len(candidates) == 1:
            return self._fallback.choose(candidates, hints)
        session = hints.session.encode()
        return max(candidates, key=lambda d: (_score(session, d.id) * d.weight, d.id))


def _score(session: bytes, deployment_id: str) -> int:
    digest = hashlib.blake2b(session + b"\0" + deployment_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")
