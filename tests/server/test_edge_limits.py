"""The connection-level limits, over raw sockets: slow headers and bodies are cut off, header floods
get 431, trailers never reach the application, and connections beyond the cap are refused.

Each limit is set small here; every socket read waits far longer (``SOCKET_TIMEOUT_S``), so a test
fails only when the gateway never acts (as uvicorn alone never does), not when it is slow.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from interlock.sim import SimServerThread
from tests.gateway_harness import MASTER_KEY, Gateway, running_gateway, simple_config
from tests.server.edge_helpers import closed_by_server, connect, read_response, request_head

AUTH = {"Authorization": f"Bearer {MASTER_KEY}"}
CHAT = b'{"model": "chat", "messages": [{"role": "user", "content": "hi"}]}'


@contextlib.contextmanager
def edge_gateway(sim: SimServerThread, tmp: Path, server: str) -> Iterator[Gateway]:
    with running_gateway(simple_config({"sim-a": sim.base_url}, tmp, f"server: {{{server}}}")) as gw:
        yield gw


def port_of(gateway: Gateway) -> int:
    return int(gateway.url.rsplit(":", 1)[1])


def send_quietly(sock: socket.socket, data: bytes) -> None:
    """Send, ignoring a connection the server has already closed (it may refuse mid-request)."""
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        sock.sendall(data)


def test_slow_headers_get_408_and_the_connection_closes(sim: SimServerThread, tmp_path: Path) -> None:
    with edge_gateway(sim, tmp_path, "header_timeout_s: 0.3") as gw, connect(port_of(gw)) as sock:
        send_quietly(sock, b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: 1\r\n")
        status, raw = read_response(sock)
        assert status == 408, raw
        assert b"did not arrive in time" in raw
        assert closed_by_server(sock)


def test_a_connection_that_sends_nothing_is_closed(sim: SimServerThread, tmp_path: Path) -> None:
    with edge_gateway(sim, tmp_path, "header_timeout_s: 0.3") as gw, connect(port_of(gw)) as sock:
        assert closed_by_server(sock)


def test_a_body_at_a_trickle_gets_408(sim: SimServerThread, tmp_path: Path) -> None:
    with edge_gateway(sim, tmp_path, "body_timeout_s: 0.3") as gw, connect(port_of(gw)) as sock:
        head = request_head("POST", "/v1/chat/completions", {**AUTH, "Content-Length": str(len(CHAT))})
        send_quietly(sock, head + CHAT[:10])
        status, raw = read_response(sock)
        assert status == 408, raw
        assert b"body did not arrive in time" in raw
        assert closed_by_server(sock)


def test_a_keep_alive_connection_serves_again_after_the_deadlines(
    sim: SimServerThread, tmp_path: Path
) -> None:
    # the deadlines are per request: a second request on the same connection gets fresh ones
    config = "header_timeout_s: 5, body_timeout_s: 5"
    with edge_gateway(sim, tmp_path, config) as gw, connect(port_of(gw)) as sock:
        for _ in range(2):
            head = request_head("POST", "/v1/chat/completions", {**AUTH, "Content-Length": str(len(CHAT))})
            sock.sendall(head + CHAT)
            status, raw = read_response(sock)
            assert status == 200, raw


def test_too_many_headers_get_431(sim: SimServerThread, tmp_path: Path) -> None:
    with edge_gateway(sim, tmp_path, "max_headers: 20") as gw, connect(port_of(gw)) as sock:
        headers = {f"X-Filler-{i}": "x" for i in range(30)}
        send_quietly(sock, request_head("GET", "/healthz", headers))
        status, raw = read_response(sock)
        assert status == 431, raw
        assert b"More than 20 request headers" in raw


def test_oversized_headers_get_431_before_they_are_all_sent(sim: SimServerThread, tmp_path: Path) -> None:
    with edge_gateway(sim, tmp_path, "max_header_bytes: 8192") as gw, connect(port_of(gw)) as sock:
        send_quietly(sock, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Huge: ")
        for _ in range(1024):  # up to 64 MiB of one header value, unless the gateway stops it
            try:
                sock.sendall(b"y" * 65536)
            except (BrokenPipeError, ConnectionResetError):
                break
        status, raw = read_response(sock)
        assert status == 431, raw
        assert b"headers exceed the size limit" in raw


def chunked(body: bytes, trailers: list[str]) -> bytes:
    return (
        f"{len(body):x}\r\n".encode()
        + body
        + b"\r\n0\r\n"
        + "".join(f"{t}\r\n" for t in trailers).encode()
        + b"\r\n"
    )


def test_trailers_never_reach_the_application(sim: SimServerThread, tmp_path: Path) -> None:
    # a trailer naming a pool no deployment is in would make the request fail, were it read
    with edge_gateway(sim, tmp_path, "") as gw, connect(port_of(gw)) as sock:
        head = request_head("POST", "/v1/chat/completions", {**AUTH, "Transfer-Encoding": "chunked"})
        sock.sendall(head + chunked(CHAT, ["X-Interlock-Pool: nowhere"]))
        status, raw = read_response(sock)
        assert status == 200, raw


def test_a_trailer_flood_is_refused(sim: SimServerThread, tmp_path: Path) -> None:
    with edge_gateway(sim, tmp_path, "max_headers: 20") as gw, connect(port_of(gw)) as sock:
        head = request_head("POST", "/v1/chat/completions", {**AUTH, "Transfer-Encoding": "chunked"})
        send_quietly(sock, head + chunked(CHAT, [f"X-T-{i}: 1" for i in range(40)]))
        status, raw = read_response(sock)
        assert status in (0, 431), raw  # 431 unless the app had answered first; closed either way
        assert closed_by_server(sock)


def test_connections_beyond_the_cap_get_503(sim: SimServerThread, tmp_path: Path) -> None:
    with edge_gateway(sim, tmp_path, "max_connections: 3") as gw:
        held = [connect(port_of(gw)) for _ in range(3)]
        try:
            with connect(port_of(gw)) as extra:
                send_quietly(extra, request_head("GET", "/healthz", {}))
                status, raw = read_response(extra)
                assert status == 503, raw
            held.pop().close()
            with connect(port_of(gw)) as again:  # a free place is usable again
                again.sendall(request_head("GET", "/healthz", {}))
                assert read_response(again)[0] == 200
        finally:
            for sock in held:
                sock.close()


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/admin/keys", "/v1/messages"])
def test_declared_oversized_bodies_get_413_unread(sim: SimServerThread, tmp_path: Path, path: str) -> None:
    limits = "body_limits: {model: 4096, admin: 1024}"
    with edge_gateway(sim, tmp_path, limits) as gw, connect(port_of(gw)) as sock:
        # headers only: the answer must come without a byte of the body
        sock.sendall(request_head("POST", path, {**AUTH, "Content-Length": "100000"}))
        status, raw = read_response(sock)
        assert status == 413, raw
        assert b"limit" in raw
