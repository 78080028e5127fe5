"""The test Redis server (127.0.0.1:6379): found once, or a clear reason to skip."""

from __future__ import annotations

import socket

__all__ = ["REDIS_HOST", "REDIS_PORT", "find_redis"]

REDIS_HOST = "127.0.0.1"
REDIS_PORT = 6379


def find_redis() -> str | None:
    """None when Redis answers PING; otherwise why the Redis tests must skip."""
    try:
        with socket.create_connection((REDIS_HOST, REDIS_PORT), timeout=3) as sock:
            sock.sendall(b"PING\r\n")
            answer = sock.recv(64)
    except OSError as exc:
        return f"Redis at {REDIS_HOST}:{REDIS_PORT} is unreachable ({exc}); start it with .ci/run"
    if not answer.startswith(b"+PONG"):
        return f"Redis at {REDIS_HOST}:{REDIS_PORT} answered PING with {answer[:40]!r}"
    return None
