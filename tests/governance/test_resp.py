"""The pipelined RESP client: every reply type from the real Redis, a parser indifferent to how the
bytes are split, pipelining under concurrency and cancellation, and the failures (timeout, refused,
wrong password, malformed replies) against small fake servers started here."""

from __future__ import annotations

import asyncio
import random
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import uvloop

from interlock.governance.counters import CountersUnavailable
from interlock.governance.redis_counters import RedisCounters
from interlock.governance.resp import (
    INCOMPLETE,
    MAX_BULK,
    MAX_LINE,
    NoScript,
    ProtocolError,
    RespAddress,
    RespBusy,
    RespClient,
    RespError,
    RespParser,
    RespUnavailable,
    error_reply,
)
from interlock.server.thread import free_port

# -- helpers ---------------------------------------------------------------------------------------


def plain(value: Any) -> Any:
    """A reply with its errors as comparable tuples."""
    if isinstance(value, RespError):
        return (type(value).__name__, str(value))
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


def parse_all(chunks: list[bytes]) -> list[Any]:
    parser = RespParser()
    replies = []
    for chunk in chunks:
        parser.feed(chunk)
        while (reply := parser.gets()) is not INCOMPLETE:
            replies.append(plain(reply))
        parser.compact()
    assert parser.idle
    return replies


Handler = Callable[[list[str]], bytes | None]
"""A fake server's answer to one command: the reply's bytes, or None to never answer."""


class FakeRedis(asyncio.Protocol):
    """One connection of a fake Redis: parses commands with the client's own parser."""

    def __init__(self, server: FakeServer) -> None:
        self.server = server
        self.parser = RespParser()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.server.protocols.append(self)

    def data_received(self, data: bytes) -> None:
        self.parser.feed(data)
        while (command := self.parser.gets()) is not INCOMPLETE:
            self.server.commands.append(command)
            reply = self.server.handler(command)
            if reply is not None and self.transport is not None:
                self.transport.write(reply)
        self.parser.compact()


class FakeServer:
    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.commands: list[list[str]] = []
        self.protocols: list[FakeRedis] = []

    @property
    def connections(self) -> int:
        return len(self.protocols)


@pytest.fixture
async def fake() -> AsyncIterator[Callable[[Handler], Any]]:
    """Start a fake Redis on a loopback port: ``(server, url) = await fake(handler)``."""
    servers: list[asyncio.Server] = []

    async def start(handler: Handler) -> tuple[FakeServer, str]:
        state = FakeServer(handler)
        server = await asyncio.get_running_loop().create_server(lambda: FakeRedis(state), "127.0.0.1", 0)
        servers.append(server)
        port = server.sockets[0].getsockname()[1]
        return state, f"redis://127.0.0.1:{port}/0"

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


def pong(command: list[str]) -> bytes:
    return b"+PONG\r\n" if command[0] == "PING" else b"+OK\r\n"


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[RespClient]:
    opened = RespClient.from_url(redis_url, timeout_s=5.0, connect_timeout_s=5.0)
    try:
        yield opened
    finally:
        await opened.aclose()


# -- replies from the real Redis -------------------------------------------------------------------


async def test_every_reply_type(client: RespClient, prefix: str) -> None:
    key = prefix + "k"
    assert await client.ping() == "PONG"  # simple string
    assert await client.call("SET", key, "héllo ✓") == "OK"
    assert await client.call("GET", key) == "héllo ✓"  # bulk string, decoded
    assert await client.call("GET", prefix + "missing") is None  # null bulk string
    assert await client.call("SET", key, "") == "OK"
    assert await client.call("GET", key) == ""
    assert await client.call("INCR", prefix + "n") == 1  # integer
    assert await client.call("INCRBY", prefix + "n", -5) == -4
    assert await client.call("LRANGE", prefix + "missing", 0, -1) == []  # empty array
    assert await client.call("BLPOP", prefix + "missing", "0.01") is None  # null array
    nested = await client.call("EVAL", "return {1, 'a', {2, {'b'}}, redis.error_reply('E oops')}", 0)
    assert plain(nested) == [1, "a", [2, ["b"]], ("RespError", "E oops")]
    big = "x" * 300_000 + "\r\n" + "y" * 10
    await client.call("SET", key, big)
    assert await client.call("GET", key) == big
    await client.call("SET", key, b"\x00\xff\r\n")
    raw = await client.call("GET", key)
    assert raw.encode("utf-8", "surrogateescape") == b"\x00\xff\r\n"


async def test_error_replies_raise_and_leave_the_connection_usable(client: RespClient, prefix: str) -> None:
    await client.call("SET", prefix + "s", "text")
    with pytest.raises(RespError, match="not an integer") as caught:
        await client.call("INCR", prefix + "s")
    assert type(caught.value) is RespError
    with pytest.raises(RespError, match="unknown command"):
        await client.call("NO-SUCH-COMMAND")
    with pytest.raises(NoScript):
        await client.evalsha("0" * 40, 0)
    sha = await client.script_load("return ARGV[1]")
    assert await client.evalsha(sha, 0, "back") == "back"


def test_errors_are_classified_by_their_first_word() -> None:
    for message in ("BUSY Redis is busy", "LOADING loading", "READONLY replica", "OOM no memory"):
        assert type(error_reply(message)) is RespBusy
    assert type(error_reply("NOSCRIPT No matching script")) is NoScript
    assert type(error_reply("BUSYKEY Target key name already exists.")) is RespError
    assert isinstance(RespUnavailable("x"), ConnectionError)


async def test_pipelined_calls_from_many_tasks_get_their_own_answers(client: RespClient, prefix: str) -> None:
    async def worker(task: int) -> list[bool]:
        results = []
        for step in range(40):
            amount = task * 1000 + step + 1
            results.append(await client.call("INCRBY", f"{prefix}{amount}", amount) == amount)
        return results

    done = await asyncio.gather(*(worker(task) for task in range(50)))
    assert sum(map(sum, done)) == 2000


async def test_a_cancelled_call_does_not_shift_later_replies(client: RespClient, prefix: str) -> None:
    blocking = asyncio.create_task(client.call("BLPOP", prefix + "missing", "0.05"))
    cancelled = asyncio.create_task(client.call("ECHO", "cancelled"))
    after = asyncio.create_task(client.call("ECHO", "after"))
    await asyncio.sleep(0)  # every command is written; BLPOP holds the replies back
    cancelled.cancel()
    assert await blocking is None
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert await after == "after"
    assert await client.call("ECHO", "later") == "later"


async def test_a_database_is_selected(redis_url: str, prefix: str) -> None:
    other = RespClient.from_url(redis_url.removesuffix("/0") + "/5", timeout_s=5.0)
    default = RespClient.from_url(redis_url, timeout_s=5.0)
    try:
        await other.call("SET", prefix + "db", "five")
        assert await default.call("GET", prefix + "db") is None
        assert await other.call("GET", prefix + "db") == "five"
        await other.call("DEL", prefix + "db")
    finally:
        await other.aclose()
        await default.aclose()


def test_under_uvloop(redis_skip_reason: str | None, prefix: str) -> None:
    """Production runs on uvloop, whose transports differ from asyncio's."""
    if redis_skip_reason is not None:
        pytest.skip(redis_skip_reason)

    async def scenario() -> None:
        client = RespClient.from_url("redis://127.0.0.1:6379/0", timeout_s=5.0)
        try:
            assert await client.ping() == "PONG"
            answers = await asyncio.gather(
                *(client.call("INCRBY", f"{prefix}u{i}", i) for i in range(1, 200))
            )
            assert answers == list(range(1, 200))
            with pytest.raises(RespError):
                await client.call("NO-SUCH-COMMAND")
        finally:
            await client.aclose()
        refused = RespClient.from_url(f"redis://127.0.0.1:{free_port()}/0")
        with pytest.raises(RespUnavailable):
            await refused.ping()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(scenario())


# -- the parser ------------------------------------------------------------------------------------

STREAM = (
    b"+OK\r\n-ERR wrong\r\n-NOSCRIPT No matching script\r\n:42\r\n:-7\r\n$5\r\nhello\r\n$0\r\n\r\n"
    b"$-1\r\n*-1\r\n*0\r\n$6\r\na\r\nb\r\n\r\n"
    b"*4\r\n:1\r\n*2\r\n$1\r\nx\r\n*1\r\n-LOADING wait\r\n$-1\r\n+done\r\n"
    b"$" + str(len("é" * 5000)).encode() + b"\r\n" + ("é" * 2500).encode() + b"\r\n"
    b"*3\r\n*0\r\n*-1\r\n$2\r\nzz\r\n"
)
EXPECTED = [
    "OK",
    ("RespError", "ERR wrong"),
    ("NoScript", "NOSCRIPT No matching script"),
    42,
    -7,
    "hello",
    "",
    None,
    None,
    [],
    "a\r\nb\r\n",
    [1, ["x", [("RespBusy", "LOADING wait")]], None, "done"],
    "é" * 2500,
    [[], None, "zz"],
]


def test_the_parser_reads_every_type_whole() -> None:
    assert parse_all([STREAM]) == EXPECTED


def test_the_parser_reads_byte_by_byte() -> None:
    assert parse_all([STREAM[i : i + 1] for i in range(len(STREAM))]) == EXPECTED


def test_the_parser_reads_random_splits() -> None:
    rng = random.Random(7)
    for _ in range(200):
        cuts = sorted(rng.sample(range(1, len(STREAM)), rng.randint(1, 40)))
        chunks = [STREAM[a:b] for a, b in zip([0, *cuts], [*cuts, len(STREAM)], strict=True)]
        assert parse_all(chunks) == EXPECTED


def test_the_parser_drops_what_it_has_read() -> None:
    parser = RespParser()
    payload = b"x" * 100_000
    parser.feed(b"$100000\r\n" + payload[:10])
    assert parser.gets() is INCOMPLETE
    parser.compact()
    assert parser.buffered == 10  # the length line is gone; the bulk string's start stays
    for index in range(10, len(payload), 1000):
        parser.feed(payload[index : index + 1000])
        assert parser.gets() is INCOMPLETE
        parser.compact()
    parser.feed(b"\r\n:1\r\n")
    assert parser.gets() == payload.decode()
    assert parser.gets() == 1
    parser.compact()
    assert parser.buffered == 0 and parser.idle


@pytest.mark.parametrize(
    "data",
    [
        b"$" + str(MAX_BULK + 1).encode() + b"\r\n",
        b"*2000000\r\n",
        b"$-2\r\n",
        b"!3\r\nabc\r\n",
        b"\r\n",
        b":12x\r\n",
        b"$3\r\nabcd\r\n",
        b"*1\r\n" * 65 + b":1\r\n",
        b"+" + b"a" * (MAX_LINE + 1),
    ],
)
def test_the_parser_refuses_malformed_or_oversized_replies(data: bytes) -> None:
    parser = RespParser()
    parser.feed(data)
    with pytest.raises(ValueError):  # ProtocolError, or a length that is not a number
        while parser.gets() is not INCOMPLETE:
            pass
    assert issubclass(ProtocolError, ValueError)


# -- failures, against fake servers ----------------------------------------------------------------


async def test_a_silent_server_times_out_every_pending_call_then_the_client_reconnects(
    fake: Callable[[Handler], Any],
) -> None:
    silent = True
    server, url = await fake(lambda command: None if silent else pong(command))
    client = RespClient.from_url(url, timeout_s=0.05, connect_timeout_s=5.0)
    try:
        calls = [asyncio.create_task(client.ping()) for _ in range(3)]
        for outcome in await asyncio.gather(*calls, return_exceptions=True):
            assert isinstance(outcome, RespUnavailable) and "no reply" in str(outcome)
        silent = False
        assert await client.ping() == "PONG"
        assert server.connections == 2
    finally:
        await client.aclose()


async def test_a_refused_connection_is_unavailable() -> None:
    client = RespClient.from_url(f"redis://127.0.0.1:{free_port()}/0")
    with pytest.raises(RespUnavailable) as caught:
        await client.call("PING")
    assert isinstance(caught.value, OSError)
    counters = RedisCounters(client)
    assert not await counters.ping()
    with pytest.raises(CountersUnavailable):
        await counters.usage([], 0)


async def test_concurrent_callers_share_one_connection_attempt(fake: Callable[[Handler], Any]) -> None:
    server, url = await fake(pong)
    client = RespClient.from_url(url)
    try:
        assert await asyncio.gather(*(client.ping() for _ in range(20))) == ["PONG"] * 20
        assert server.connections == 1
    finally:
        await client.aclose()


async def test_a_connection_closed_by_the_server_fails_its_calls_and_is_reopened(
    fake: Callable[[Handler], Any],
) -> None:
    def hang_up(command: list[str]) -> bytes | None:
        if command[0] == "QUIT":
            transport = server.protocols[-1].transport
            assert transport is not None
            transport.close()
            return None
        return pong(command)

    server, url = await fake(hang_up)
    client = RespClient.from_url(url, timeout_s=5.0)
    try:
        assert await client.ping() == "PONG"
        with pytest.raises(RespUnavailable, match=r"closed the connection|lost"):
            await client.call("QUIT")
        assert await client.ping() == "PONG"
        assert server.connections == 2
    finally:
        await client.aclose()


async def test_closing_while_connecting_fails_the_waiting_calls(fake: Callable[[Handler], Any]) -> None:
    logging_in = asyncio.Event()

    def never_answer(command: list[str]) -> None:
        logging_in.set()

    server, url = await fake(never_answer)
    client = RespClient.from_url(url.replace("redis://", "redis://:pw@"), connect_timeout_s=30)
    waiting = [asyncio.create_task(client.ping()) for _ in range(3)]
    await logging_in.wait()
    await client.aclose()
    for outcome in await asyncio.gather(*waiting, return_exceptions=True):
        assert isinstance(outcome, RespUnavailable)
    assert server.connections == 1


async def test_a_wrong_password_is_refused_without_showing_it(fake: Callable[[Handler], Any]) -> None:
    def wrongpass(command: list[str]) -> bytes:
        if command[0] == "AUTH":
            return b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"
        return pong(command)

    server, url = await fake(wrongpass)
    secret = "s3cret-pw%2Fx"
    client = RespClient.from_url(url.replace("redis://", f"redis://alice:{secret}@"))
    with pytest.raises(RespUnavailable, match="WRONGPASS") as caught:
        await client.ping()
    assert server.commands == [["AUTH", "alice", "s3cret-pw/x"]]
    shown = [str(caught.value), repr(caught.value), repr(client), repr(client.address), str(client.address)]
    shown += [str(caught.value.__cause__), repr(caught.value.__cause__)]
    assert not any("s3cret" in text for text in shown)


async def test_login_and_database_go_first_over_a_unix_socket(tmp_path: Path) -> None:
    state = FakeServer(pong)
    path = tmp_path / "redis.sock"
    server = await asyncio.get_running_loop().create_unix_server(lambda: FakeRedis(state), str(path))
    client = RespClient.from_url(f"unix://:pw@{path}?db=3")
    try:
        assert await client.ping() == "PONG"
        assert state.commands == [["AUTH", "pw"], ["SELECT", "3"], ["PING"]]
    finally:
        await client.aclose()
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize("reply", [b"$" + str(MAX_BULK + 1).encode() + b"\r\n", b"*9999999\r\n", b"?\r\n"])
async def test_an_oversized_or_malformed_reply_closes_the_connection(
    fake: Callable[[Handler], Any], reply: bytes
) -> None:
    bad = True

    def answer(command: list[str]) -> bytes:
        return reply if bad else pong(command)

    server, url = await fake(answer)
    client = RespClient.from_url(url)
    try:
        with pytest.raises(RespUnavailable, match="malformed"):
            await client.ping()
        bad = False
        assert await client.ping() == "PONG"
        assert server.connections == 2
    finally:
        await client.aclose()


async def test_a_reply_nobody_asked_for_closes_the_connection(fake: Callable[[Handler], Any]) -> None:
    server, url = await fake(lambda command: b"+PONG\r\n+EXTRA\r\n")
    client = RespClient.from_url(url)
    try:
        assert await client.ping() == "PONG"
        assert await client.ping() == "PONG"  # on a new connection: the extra reply broke the first
        assert server.connections == 2
    finally:
        await client.aclose()


def answer_with(reply: bytes) -> Handler:
    return lambda command: reply


async def test_busy_loading_readonly_and_oom_are_unavailable_to_the_counters(
    fake: Callable[[Handler], Any],
) -> None:
    for message in (b"-BUSY running a script", b"-LOADING loading", b"-READONLY replica", b"-OOM full"):
        _, url = await fake(answer_with(message + b"\r\n"))
        counters = RedisCounters.from_url(url)
        try:
            with pytest.raises(CountersUnavailable):
                await counters.usage([], 0)
        finally:
            await counters.aclose()


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1: (cert, key)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    command = "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1"
    command += " -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1"
    subprocess.run(
        [*command.split(), "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    return cert, key


async def test_rediss_speaks_tls_and_checks_the_certificate(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    served.load_cert_chain(cert, key)
    state = FakeServer(pong)
    server = await asyncio.get_running_loop().create_server(
        lambda: FakeRedis(state), "127.0.0.1", 0, ssl=served
    )
    url = f"rediss://:pw@127.0.0.1:{server.sockets[0].getsockname()[1]}/0"
    try:
        untrusting = RespClient.from_url(url)
        with pytest.raises(RespUnavailable, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
            await untrusting.ping()
        trusting = RespClient(RespAddress.from_url(url), ssl_context=ssl.create_default_context(cafile=cert))
        try:
            assert await trusting.ping() == "PONG"
            assert state.commands == [["AUTH", "pw"], ["PING"]]
        finally:
            await trusting.aclose()
    finally:
        server.close()
        await server.wait_closed()


# -- addresses -------------------------------------------------------------------------------------


def test_urls() -> None:
    address = RespAddress.from_url("redis://bob:p%40ss@cache.internal:6380/2")
    assert (address.host, address.port, address.db, address.username, address.password, address.tls) == (
        "cache.internal",
        6380,
        2,
        "bob",
        "p@ss",
        False,
    )
    assert "p@ss" not in repr(address) and "p@ss" not in str(address)
    assert RespAddress.from_url("rediss://:pw@h").tls
    assert RespAddress.from_url("rediss://:pw@h").password == "pw"
    assert RespAddress.from_url("redis://h") == RespAddress(host="h")
    assert RespAddress.from_url("redis://[::1]:7000/0").host == "::1"
    unix = RespAddress.from_url("unix:///run/redis.sock?db=4")
    assert (unix.path, unix.db) == ("/run/redis.sock", 4)
    with pytest.raises(ValueError, match="ssl_cert_reqs"):
        RespAddress.from_url("rediss://h?ssl_cert_reqs=none")
    with pytest.raises(ValueError, match="redis://"):
        RespAddress.from_url("http://h")
