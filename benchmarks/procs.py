"""Start and stop the processes a benchmark needs, pinned to CPUs, and read their CPU time and RSS.

Every child runs in its own session (process group), so stopping it stops whatever it started too,
and a Ctrl-C in the terminal reaches only the benchmark, whose ``finally`` then stops the children.
"""

from __future__ import annotations

import contextlib
import os
import platform
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO

__all__ = [
    "BackgroundMeter",
    "Child",
    "CpuPlan",
    "cpu_model",
    "cpu_seconds",
    "free_port",
    "group_cpu_seconds",
    "group_pids",
    "machine_line",
    "plan_cpus",
    "rss_mb",
    "sigterm_as_interrupt",
    "spawn",
    "wait_http_ok",
]

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class CpuPlan:
    """Which CPUs the server under test gets, and which the rest (upstream, load generator) gets."""

    server: frozenset[int] | None
    rig: frozenset[int] | None

    def describe(self) -> str:
        if self.server is None or self.rig is None:
            return "not pinned (fewer than 2 CPUs available)"
        return f"server on cpu {_cpus(self.server)}, upstream + load generator on cpu {_cpus(self.rig)}"


def _cpus(cpus: frozenset[int]) -> str:
    return ",".join(str(c) for c in sorted(cpus))


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (as ``interlock.server.thread.free_port``; repeated here
    so that the component benchmarks do not import the gateway)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def plan_cpus() -> CpuPlan:
    """Server on the first available CPU, everything else on the second (when there are two)."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return CpuPlan(None, None)
    return CpuPlan(frozenset({cpus[0]}), frozenset({cpus[1]}))


@dataclass
class Child:
    """A child process in its own process group; ``stop`` ends the whole group."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self, grace_s: float = 5.0) -> None:
        if self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(grace_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def spawn(name: str, command: Sequence[str], log_path: Path, cpus: frozenset[int] | None) -> Child:
    """Start ``command`` in a new session, pinned to ``cpus`` (inherited by its threads and children).

    Pinning is done by pinning this process around the fork, which avoids ``preexec_fn``.
    """
    own = os.sched_getaffinity(0)
    log: IO[bytes] = log_path.open("wb")
    try:
        if cpus is not None:
            os.sched_setaffinity(0, cpus)
        process = subprocess.Popen(
            list(command),
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )
    finally:
        os.sched_setaffinity(0, own)
        log.close()
    return Child(name, process, log_path)


def wait_http_ok(url: str, child: Child, timeout_s: float = 30.0) -> None:
    """Poll ``url`` until it answers 200; fail with the child's log if it dies or takes too long."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not child.alive():
            raise RuntimeError(f"{child.name} exited during start-up:\n{child.log_tail()}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{child.name} did not become healthy in {timeout_s:.0f} s:\n{child.log_tail()}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (all its threads) so far."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def group_pids(pgid: int) -> list[int]:
    """The live processes of process group ``pgid``."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            pids.append(int(entry))
    return pids


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU seconds of every live process in process group ``pgid``."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone in between
        if int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])
    return total / _CLOCK_TICKS


def rss_mb(pid: int) -> float:
    """Resident set size of ``pid`` in MB (10^6 bytes), from VmRSS."""
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024 / 1e6
    raise RuntimeError(f"no VmRSS for pid {pid}")


def machine_busy_seconds() -> float:
    """CPU seconds all CPUs spent busy since boot (user, nice, system, irq, softirq, steal)."""
    with open("/proc/stat", encoding="ascii") as f:
        fields = f.readline().split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / _CLOCK_TICKS


class BackgroundMeter:
    """How busy the machine was with *other* processes: busy time minus ours, over wall time."""

    def __init__(self, our_pids: Sequence[int]) -> None:
        self._pids = [*our_pids, os.getpid()]
        self._start = self._sample()

    def _sample(self) -> tuple[float, float, float]:
        ours = 0.0
        for pid in self._pids:
            with contextlib.suppress(OSError):
                ours += cpu_seconds(pid)
        return time.monotonic(), machine_busy_seconds(), ours

    def cores(self) -> float:
        """Average number of cores other processes kept busy since this meter was made."""
        wall0, busy0, ours0 = self._start
        wall1, busy1, ours1 = self._sample()
        return max(0.0, (busy1 - busy0) - (ours1 - ours0)) / max(1e-9, wall1 - wall0)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine_line() -> str:
    return (
        f"{os.cpu_count()} cores ({cpu_model()}), Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}"
    )


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Treat SIGTERM like Ctrl-C so that ``finally`` blocks stop the children."""
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
