"""``interlock up`` as users run it: the demo fleet starts, serves, and goes away with the gateway."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from interlock.server.thread import free_port


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


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_demo_fleet_serves_and_stops_with_the_gateway(tmp_path: Path, sig: signal.Signals) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTERLOCK_")}
    command = [sys.executable, "-c", "from interlock.cli.main import main; main()", "up", "--port", str(port)]
    log = tmp_path / "up.log"
    with log.open("wb") as out:
        gateway = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert gateway.poll() is None, log.read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the gateway did not start"
            time.sleep(0.2)
        key = (tmp_path / ".interlock" / "master.key").read_text().strip()
        answer = httpx.post(
            f"http://127.0.0.1:{port}/v1/chat/completions",
            headers={"Authorization": f"Bearer {key}"},
            json={"model": "chat", "messages": [{"role": "user", "content": "hi"}]},
            timeout=10,
        )
        assert answer.status_code == 200
        simulators = children(gateway.pid)
        assert len(simulators) == 2

        gateway.send_signal(sig)
        gateway.wait(timeout=30)
        deadline = time.monotonic() + 10
        while any(alive(pid) for pid in simulators) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(alive(pid) for pid in simulators), "the demo simulators outlived the gateway"
    finally:
        if gateway.poll() is None:
            gateway.kill()
            gateway.wait()
