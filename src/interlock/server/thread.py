"""Serve an ASGI app from a background thread: for tests, benchmarks and embedding."""

from __future__ import annotations

import asyncio
import socket
import threading
from types import TracebackType
from typing import Any

import uvicorn

from interlock.server.edge import EdgeProtocol

__all__ = ["ServerThread", "free_port"]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class ServerThread:
    """Run ``app`` under uvicorn in a thread with its own event loop; stop cleanly on exit.

    The gateway's edge protocol serves it, as under ``interlock up``; ``options`` are passed on to
    ``uvicorn.Config`` over the defaults here.
    """

    def __init__(
        self,
        app: Any,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        startup_timeout_s: float = 30.0,
        **options: Any,
    ):
        self.host = host
        self.port = port or free_port(host)
        settings: dict[str, Any] = {
            "loop": "uvloop",
            "http": EdgeProtocol,
            "log_level": "warning",
            "access_log": False,
            "lifespan": "on",
            "timeout_graceful_shutdown": 5,
            **options,
        }
        self._config = uvicorn.Config(app, host=host, port=self.port, **settings)
        self._server = uvicorn.Server(self._config)
        self._thread = threading.Thread(target=self._run, name=f"server-{self.port}", daemon=True)
        self._timeout = startup_timeout_s
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _run(self) -> None:
        try:
            asyncio.run(self._server.serve())
        except BaseException as exc:  # reported by start()
            self._error = exc

    def start(self) -> ServerThread:
        self._thread.start()
        deadline = threading.Event()
        for _ in range(int(self._timeout / 0.01)):
            if self._server.started or not self._thread.is_alive():
                break
            deadline.wait(0.01)
        if not self._server.started:
            self.stop()
            raise RuntimeError(f"server on port {self.port} did not start: {self._error!r}")
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=15)

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
