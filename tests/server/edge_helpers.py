"""Helpers for tests at the socket level: a gateway as ``interlock up`` runs it, and raw HTTP/1.1."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from interlock.server.thread import free_port

SOCKET_TIMEOUT_S = 20.0
"""How long a test waits on a socket before it fails: far above every limit the tests set, so a
test fails only when the gateway never answers (today's behaviour), never because it is slow."""


@dataclass
class GatewayProcess:
    process: subprocess.Popen[bytes]
    url: str
    port: int

    def rss_bytes(self) -> int:
        """The process's resident set size, from /proc."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS line")


@contextmanager
def gateway_process(tmp: Path, config_text: str) -> Iterator[GatewayProcess]:
    """``interlock up --config`` in a subprocess, as users run it; stopped on exit."""
    path = tmp / "gateway.yaml"
    path.write_text(config_text)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTERLOCK_")}
    command = [sys.executable, "-c", "from interlock.cli.main import main; main()", "up"]
    command += ["--config", str(path), "--port", str(port)]
    log = tmp / "gateway.log"
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=tmp, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the gateway did not start: " + log.read_text()
            time.sleep(0.1)
        yield GatewayProcess(process, url, port)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=SOCKET_TIMEOUT_S)
    sock.settimeout(SOCKET_TIMEOUT_S)
    return sock


def request_head(method: str, path: str, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def read_response(sock: socket.socket) -> tuple[int, bytes]:
    """The status and everything the server sent until it closed the connection or the response's
    declared length was read. A socket timeout (the server never answered) fails the test."""
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
        head, sep, body = data.partition(b"\r\n\r\n")
        if sep:
            length = _content_length(head)
            if length is not None and len(body) >= length:
                break
    if not data:
        return 0, b""
    return int(data.split(b" ", 2)[1]), data


def closed_by_server(sock: socket.socket) -> bool:
    """Whether the server closes the connection (reading and discarding anything it sends first)."""
    while True:
        try:
            if not sock.recv(65536):
                return True
        except ConnectionResetError:
            return True


def _content_length(head: bytes) -> int | None:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
    return None
