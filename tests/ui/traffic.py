"""Simulated traffic for the dashboard tests: a few threads sending requests through the openai SDK.

Every request must succeed, except the deliberate request for an unknown model, which must be a 404.
Anything else (an error status, an exception, an unknown model answered) is kept in ``failures`` for
the tests to assert on; a failure never stops the thread that met it."""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Callable, Iterator

import openai

__all__ = ["TrafficGenerator"]

Sender = Callable[[openai.OpenAI, random.Random, int], None]


def _chat_stream(client: openai.OpenAI, rng: random.Random, n: int) -> None:
    stream = client.chat.completions.create(
        model="chat",
        messages=[{"role": "user", "content": f"Summarise ticket {n} in a sentence."}],
        max_tokens=rng.randint(8, 48),
        stream=True,
    )
    for _ in stream:
        pass


def _mixed(client: openai.OpenAI, rng: random.Random, n: int) -> None:
    if n % 17 == 16:  # a client asking for a model that does not exist: a recorded 404, expected
        try:
            client.chat.completions.create(model="gpt-unknown", messages=[{"role": "user", "content": "x"}])
        except openai.NotFoundError:
            return
        raise AssertionError("the unknown model gpt-unknown was answered")
    if n % 5 == 4:
        client.embeddings.create(model="embed", input=[f"document {n}", "another passage"])
        return
    model = "premium" if n % 2 else "chat"
    client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": f"Question {n}?"}], max_tokens=rng.randint(8, 40)
    )


def _tenant(client: openai.OpenAI, rng: random.Random, n: int) -> None:
    if n % 2:
        _chat_stream(client, rng, n)
    else:
        client.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": f"Classify {n}"}], max_tokens=12
        )


class TrafficGenerator:
    """Background threads sending requests until stopped; :meth:`paused` quiesces them."""

    def __init__(
        self, master: Callable[[], openai.OpenAI], tenant: Callable[[], openai.OpenAI], gap_s: float = 0.06
    ) -> None:
        # one client per thread: each thread keeps its own connection pool
        self._workers: list[tuple[str, openai.OpenAI, Sender]] = [
            ("master-stream", master(), _chat_stream),
            ("master-mixed", master(), _mixed),
            ("tenant", tenant(), _tenant),
        ]
        self._gap_s = gap_s
        self._stop = threading.Event()
        self._go = threading.Event()
        self._go.set()
        self._lock = threading.Lock()
        self._busy = 0
        self._threads: list[threading.Thread] = []
        self.sent = 0
        """Requests that got the answer they expected."""
        self.failures: list[str] = []
        """One line per request that did not: ``thread #n: Error: message``."""

    def start(self) -> None:
        for index, (name, client, send) in enumerate(self._workers):
            thread = threading.Thread(
                target=self._run, args=(client, send, index), name=f"traffic-{name}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def _run(self, client: openai.OpenAI, send: Sender, seed: int) -> None:
        rng = random.Random(seed)
        n = 0
        while not self._stop.is_set():
            if not self._go.wait(0.05):
                continue
            with self._lock:
                self._busy += 1
            try:
                send(client, rng, n)
            except Exception as exc:  # kept for the tests to assert on, never fatal here
                failure = f"{threading.current_thread().name} #{n}: {type(exc).__name__}: {exc}"
                with self._lock:
                    self.failures.append(failure)
            else:
                with self._lock:
                    self.sent += 1
            finally:
                with self._lock:
                    self._busy -= 1
            n += 1
            time.sleep(self._gap_s)

    @contextlib.contextmanager
    def paused(self, flushed: Callable[[], bool] = lambda: True) -> Iterator[None]:
        """No new requests inside the block; those in flight have finished and ``flushed()`` says
        they have been logged."""
        self._go.clear()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with self._lock:
                idle = self._busy == 0
            if idle:
                break
            time.sleep(0.01)
        time.sleep(0.15)  # the gateway records a stream just after its last byte left
        while time.monotonic() < deadline and not flushed():
            time.sleep(0.05)
        try:
            yield
        finally:
            self._go.set()

    def failures_since(self, mark: int) -> list[str]:
        """The failures after the first ``mark`` (``len(failures)`` taken earlier)."""
        with self._lock:
            return self.failures[mark:]

    def running(self) -> bool:
        """Every thread is still sending (none has died)."""
        return bool(self._threads) and all(thread.is_alive() for thread in self._threads)

    def stop(self) -> None:
        """Stop every thread; a thread that does not stop is a failure."""
        self._stop.set()
        self._go.set()
        for thread in self._threads:
            thread.join(timeout=10)
            if thread.is_alive():
                with self._lock:
                    self.failures.append(f"{thread.name}: did not stop within 10 s")
