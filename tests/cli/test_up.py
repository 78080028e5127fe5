"""``interlock up`` as users run it: the demo fleet starts, serves, and goes away with the gateway;
the master key is shown only when Interlock made it, and no configured secret is ever printed."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from interlock.cli.main import app
from interlock.server.thread import free_port

SHOWN_KEY = re.compile(r"master key: (sk-il-master-[A-Za-z0-9_-]+)")
CONFIGURED = "sk-configured-Hq3xV8nL5tR2wZ9cK7mB4pYd"
CHAT = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}


def children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found.update(int(child) for child in text)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


class Up:
    """One ``interlock up`` process in a directory, its port and its log."""

    def __init__(self, cwd: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.log = cwd / f"up-{self.port}.log"
        environ = {k: v for k, v in os.environ.items() if not k.startswith("INTERLOCK_")} | (env or {})
        command = [sys.executable, "-c", "from interlock.cli.main import main; main()", "up"]
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [*command, "--port", str(self.port), *args],
                cwd=cwd,
                env=environ,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text()

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while True:
            assert self.process.poll() is None, self.output()
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            assert time.monotonic() < deadline, "the gateway did not start"
            time.sleep(0.2)

    def chat(self, key: str) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}"}
        return httpx.post(self.url + "/v1/chat/completions", headers=headers, json=CHAT, timeout=10)

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=30)


@contextlib.contextmanager
def running(cwd: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[Up]:
    up = Up(cwd, *args, env=env)
    try:
        up.wait_ready()
        yield up
    finally:
        if up.process.poll() is None:
            # SIGTERM, as an operator stops it: `up` then stops its demo simulators, which a SIGKILL
            # would leave running after the test
            up.process.terminate()
            try:
                up.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                up.process.kill()
                up.process.wait()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_demo_fleet_serves_and_stops_with_the_gateway(tmp_path: Path, sig: signal.Signals) -> None:
    with running(tmp_path) as up:
        shown = SHOWN_KEY.search(up.output())
        assert shown, up.output()
        assert up.chat(shown.group(1)).status_code == 200
        simulators = children(up.process.pid)
        assert len(simulators) == 2

        up.stop(sig)
        deadline = time.monotonic() + 10
        while any(alive(pid) for pid in simulators) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(alive(pid) for pid in simulators), "the demo simulators outlived the gateway"


def test_the_demo_key_is_shown_at_the_first_start_only_and_kept_as_a_hash(tmp_path: Path) -> None:
    with running(tmp_path) as first:
        shown = SHOWN_KEY.search(first.output())
        assert shown, first.output()
        key = shown.group(1)
        first.stop()
    stored = (tmp_path / ".interlock" / "master.key.sha256").read_text().strip()
    assert stored == hashlib.sha256(key.encode()).hexdigest()
    assert not (tmp_path / ".interlock" / "master.key").exists()
    for path in (tmp_path / ".interlock").rglob("*"):
        if path.is_file():
            assert key.encode() not in path.read_bytes(), f"the key is stored in {path}"

    with running(tmp_path) as second:
        banner = second.output()
        assert key not in banner
        assert "master key: set (shown at first start; rotate with `interlock keys rotate-master`)" in banner
        assert second.chat(key).status_code == 200
        assert second.chat("sk-il-master-not-the-key-0000000000000").status_code == 401


def test_a_key_from_the_environment_is_never_printed(tmp_path: Path) -> None:
    with running(tmp_path, env={"INTERLOCK_MASTER_KEY": CONFIGURED}) as up:
        assert CONFIGURED not in up.output()
        assert "master key: set (from INTERLOCK_MASTER_KEY)" in up.output()
        assert up.chat(CONFIGURED).status_code == 200
    assert not (tmp_path / ".interlock" / "master.key.sha256").exists()


def descendants(pid: int) -> set[int]:
    found = children(pid)
    for child in list(found):
        with contextlib.suppress(FileNotFoundError):
            found |= descendants(child)
    return found


def test_workers_get_the_master_key_as_a_hash_only(tmp_path: Path) -> None:
    with running(tmp_path, "--workers", "2", env={"INTERLOCK_MASTER_KEY": CONFIGURED}) as up:
        assert all(up.chat(CONFIGURED).status_code == 200 for _ in range(4))
        processes = descendants(up.process.pid)
        assert len(processes) >= 4  # two simulators, two workers (and uvicorn's helpers)
        digest = hashlib.sha256(CONFIGURED.encode()).hexdigest().encode()
        for pid in processes:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
            assert CONFIGURED.encode() not in environ, f"process {pid} holds the master key"
            assert b"INTERLOCK_MASTER_KEY=" not in environ
        assert any(digest in Path(f"/proc/{pid}/environ").read_bytes() for pid in processes)


def test_a_weak_master_key_is_refused_at_start_up(tmp_path: Path) -> None:
    up = Up(tmp_path, env={"INTERLOCK_MASTER_KEY": "changeme-changeme"})
    assert up.process.wait(timeout=60) == 2
    output = up.output()
    assert "INTERLOCK_MASTER_KEY is too short" in output and "changeme" not in output


def test_configured_secrets_never_reach_the_log_or_the_admin_api(tmp_path: Path) -> None:
    secrets = [CONFIGURED, "sk-proj-provider-secret-0u812", "upstream-header-token-77", "pr0xy-p4ss"]
    config = tmp_path / "interlock.yaml"
    config.write_text(f"""
master_key: {CONFIGURED}
store: sqlite:///{tmp_path}/interlock.db
providers:
  up:
    kind: openai
    base_url: http://127.0.0.1:9/v1
    api_key: {secrets[1]}
    headers: {{Authorization: "Bearer {secrets[2]}"}}
    proxy: http://user:{secrets[3]}@127.0.0.1:9
models:
  chat: {{deployments: [{{provider: up, model: m}}]}}
""")
    with running(tmp_path, "--config", str(config)) as up:
        auth = {"Authorization": f"Bearer {CONFIGURED}"}
        answers = [
            httpx.get(up.url + path, headers=auth, timeout=10)
            for path in ("/admin/deployments", "/admin/keys")
        ]
        assert all(answer.status_code == 200 for answer in answers)
        failed = up.chat(CONFIGURED)  # the upstream is unreachable: the error must not quote secrets
        assert failed.status_code >= 500
        up.stop()
        shown = up.output() + "".join(answer.text for answer in [*answers, failed])
    assert "master key: set (from the configuration)" in shown
    for secret in secrets:
        assert secret not in shown


def test_rotate_master_prints_a_new_key_once_and_keeps_its_hash(tmp_path: Path) -> None:
    state = tmp_path / ".interlock"
    result = CliRunner().invoke(app, ["keys", "rotate-master", "--dir", str(state)], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    shown = SHOWN_KEY.search(result.output)
    assert shown and "Restart `interlock up`" in result.output
    stored = (state / "master.key.sha256").read_text().strip()
    assert stored == hashlib.sha256(shown.group(1).encode()).hexdigest()
    again = CliRunner().invoke(app, ["keys", "rotate-master", "--dir", str(state)], env={"COLUMNS": "250"})
    second = SHOWN_KEY.search(again.output)
    assert second and second.group(1) != shown.group(1)
    assert (state / "master.key.sha256").read_text().strip() == hashlib.sha256(
        second.group(1).encode()
    ).hexdigest()
