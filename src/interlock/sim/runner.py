"""Running the simulator: in the foreground (:func:`serve`), in a thread of the calling process
(:class:`SimServerThread`, for tests), or as a child process (:class:`SimProcess`, for benchmarks and
the demo fleet). All serve with uvicorn on uvloop and httptools, access log off.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
import threading
import time
from types import TracebackType
from typing import IO, Any, Self

import uvicorn
from uvicorn.config import LOGGING_CONFIG

from interlock.sim.app import SimApp, create_sim_app
from interlock.sim.config import SimConfig
from interlock.sim.control import SimControls

__all__ = ["SimProcess", "SimServerThread", "config_to_args", "serve"]

#: First line a simulator prints on standard output once it listens; SimProcess reads the port from it.
LISTENING = "interlock-sim listening on "
# A hung or slow client must not hold up shutdown for longer than this.
_SHUTDOWN_GRACE_S = 2.0


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        # Listening before the server runs lets clients connect (they wait in the backlog) at once.
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class _Server(uvicorn.Server):
    """Uvicorn's server, told to stop by an event rather than a 0.1 s poll, and that ends waiting
    requests (hung, queued, streaming) before it waits for connections to finish."""

    def __init__(self, config: uvicorn.Config, app: SimApp) -> None:
        super().__init__(config)
        self.sim = app
        self.stop_requested: asyncio.Event | None = None
        self.ready = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self.stop_requested = asyncio.Event()
        await super().startup(sockets)
        self.ready.set()

    async def main_loop(self) -> None:
        assert self.stop_requested is not None
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 1) % 864000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop_requested.wait(), 0.1)
            if self.stop_requested.is_set():
                return

    def request_stop(self) -> None:
        """Ask the server to stop; callable from the loop's thread only."""
        self.should_exit = True
        if self.stop_requested is not None:
            self.stop_requested.set()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.sim.engine.close()
        for server in getattr(self, "servers", []):
            server.close()
        state = self.server_state
        for connection in list(state.connections):
            connection.shutdown()
        # Uvicorn polls every 0.1 s here; tests start and stop many simulators, so poll faster.
        deadline = time.monotonic() + _SHUTDOWN_GRACE_S
        while (state.connections or state.tasks) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.002)
        for task in list(state.tasks):
            task.cancel()
        for server in getattr(self, "servers", []):
            await server.wait_closed()
        await self.lifespan.shutdown()


def _uvicorn_config(app: SimApp, config: SimConfig, *, log_config: Any) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=config.host,
        port=config.port,
        loop="uvloop",
        http="httptools",
        ws="none",
        lifespan="off",
        access_log=False,
        proxy_headers=False,
        server_header=False,
        log_level="warning",
        log_config=log_config,
        timeout_graceful_shutdown=int(_SHUTDOWN_GRACE_S),
    )


def serve(config: SimConfig) -> None:
    """Run a simulator in the foreground until interrupted (SIGINT/SIGTERM).

    Prints ``interlock-sim listening on http://HOST:PORT`` once it accepts connections (with the real
    port when ``config.port`` is 0).
    """
    sock = _bind(config.host, config.port)
    app = create_sim_app(config)
    server = _Server(_uvicorn_config(app, config, log_config=LOGGING_CONFIG), app)

    def announce() -> None:
        server.ready.wait()
        print(LISTENING + _url(config.host, sock.getsockname()[1]), flush=True)

    threading.Thread(target=announce, daemon=True, name="interlock-sim-announce").start()
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()


class SimServerThread(SimControls):
    """A simulator serving on loopback from a background thread with its own event loop.

    ::

        with SimServerThread(SimConfig(ttft_ms=0, tpot_ms=0)) as sim:
            client = openai.OpenAI(base_url=sim.base_url, api_key="x")

    ``config.port`` 0 (the default) picks a free port. Entering returns once the simulator accepts
    connections; leaving stops it, ending any request still in progress, and joins the thread. The
    controls of :class:`~interlock.sim.control.SimControls` (``set_faults``, ``stats`` …) work on it.
    """

    def __init__(self, config: SimConfig | None = None, **changes: Any) -> None:
        config = config or SimConfig()
        self.config = config.with_changes(**changes) if changes else config
        self.app = create_sim_app(self.config)
        self._server = _Server(_uvicorn_config(self.app, self.config, log_config=None), self.app)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._error: BaseException | None = None
        self.port = 0

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return _url(self.config.host, self.port)

    @property
    def base_url(self) -> str:
        """The OpenAI base URL, ``http://127.0.0.1:PORT/v1``."""
        return self.url + "/v1"

    def start(self) -> None:
        """Start serving; returns once connections are accepted."""
        if self._thread is not None:
            raise RuntimeError("this simulator is already running")
        sock = _bind(self.config.host, self.config.port)
        self.port = sock.getsockname()[1]
        self._thread = threading.Thread(
            target=self._run, args=(sock,), daemon=True, name=f"interlock-sim-{self.port}"
        )
        self._thread.start()
        while not self._server.ready.wait(0.01):
            if not self._thread.is_alive():
                self._thread.join()
                self._thread = None
                raise RuntimeError("the simulator failed to start") from self._error

    def _run(self, sock: socket.socket) -> None:
        import uvloop

        try:
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                self._loop = runner.get_loop()
                runner.run(self._server.serve(sockets=[sock]))
        except BaseException as exc:  # surfaced to start() through the thread's death
            self._error = exc
        finally:
            sock.close()

    def stop(self) -> None:
        """Stop serving and join the thread (idempotent)."""
        thread, loop = self._thread, self._loop
        if thread is None:
            return
        if loop is not None and thread.is_alive():
            with contextlib.suppress(RuntimeError):  # the loop may have closed in between
                loop.call_soon_threadsafe(self._server.request_stop)
        thread.join()
        self._thread = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def config_to_args(config: SimConfig) -> list[str]:
    """Command-line flags of ``python -m interlock.sim`` / ``interlock sim`` that rebuild ``config``."""
    args = [
        f"--host={config.host}",
        f"--port={config.port}",
        f"--name={config.name}",
        f"--models={','.join(config.models)}",
        f"--ttft-ms={config.ttft_ms!r}",
        f"--prefill-ms-per-token={config.prefill_ms_per_token!r}",
        f"--tpot-ms={config.tpot_ms!r}",
        f"--batch-penalty={config.batch_penalty!r}",
        f"--max-concurrency={config.max_concurrency}",
        f"--queue-full-status={config.queue_full_status}",
        f"--queue-full-retry-after-s={config.queue_full_retry_after_s!r}",
        f"--context-window={config.context_window}",
        f"--default-max-tokens={config.default_max_tokens}",
        f"--output-tokens-min={config.output_tokens_min}",
        f"--output-tokens-max={config.output_tokens_max}",
        f"--prefix-block-size={config.prefix_block_size}",
        f"--prefix-cache-blocks={config.prefix_cache_blocks}",
        f"--embedding-dim={config.embedding_dim}",
        f"--seed={config.seed}",
    ]
    if config.max_queue is not None:
        args.append(f"--max-queue={config.max_queue}")
    if config.api_key is not None:
        args.append(f"--api-key={config.api_key}")
    return args


def _drain(stream: IO[str]) -> None:
    with contextlib.suppress(ValueError, OSError):  # closed by stop()
        for _ in stream:
            pass


class SimProcess(SimControls):
    """A simulator in a child process (``python -m interlock.sim``), for benchmarks and demo fleets.

    ``config.port`` 0 lets the child pick a free port and report it, so there is no race for ports.
    Entering returns once ``/health`` answers; leaving terminates the child (SIGTERM, then SIGKILL).
    The controls of :class:`~interlock.sim.control.SimControls` (``set_faults``, ``stats`` …) work on it.
    """

    def __init__(
        self, config: SimConfig | None = None, *, start_timeout_s: float = 20.0, **changes: Any
    ) -> None:
        config = config or SimConfig()
        self.config = config.with_changes(**changes) if changes else config
        self.start_timeout_s = start_timeout_s
        self.process: subprocess.Popen[str] | None = None
        self.port = self.config.port

    @property
    def url(self) -> str:
        """``http://HOST:PORT``."""
        return _url(self.config.host, self.port)

    @property
    def base_url(self) -> str:
        """The OpenAI base URL, ``…/v1``."""
        return self.url + "/v1"

    def start(self) -> None:
        """Start the child and wait until it is healthy."""
        if self.process is not None:
            raise RuntimeError("this simulator process is already running")
        command = [sys.executable, "-m", "interlock.sim", *config_to_args(self.config)]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        try:
            self.port = self._read_port(self.process.stdout)
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise

    def _read_port(self, stdout: IO[str] | None) -> int:
        assert stdout is not None
        found: list[str] = []
        reader = threading.Thread(target=lambda: found.append(stdout.readline()), daemon=True)
        reader.start()
        reader.join(self.start_timeout_s)
        line = found[0] if found else ""
        if not line.startswith(LISTENING):
            raise RuntimeError(f"the simulator process did not start (said {line.strip()!r})")
        # Keep draining stdout so the child never blocks on a full pipe.
        threading.Thread(target=_drain, args=(stdout,), daemon=True).start()
        return int(line.rsplit(":", 1)[1])

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        while not self.healthy():
            if time.monotonic() > deadline:
                raise RuntimeError(f"the simulator process at {self.url} did not become healthy")
            time.sleep(0.02)

    def stop(self) -> None:
        """Terminate the child and reap it (idempotent)."""
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdout is not None:
            process.stdout.close()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
