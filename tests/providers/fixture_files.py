"""The recorded provider payloads under ``tests/providers/fixtures``, read for the translation tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["FIXTURES", "load", "sse_events"]

FIXTURES = Path(__file__).parent / "fixtures"


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def sse_events(name: str) -> list[tuple[str | None, dict[str, Any]]]:
    events = []
    for frame in (FIXTURES / name).read_text().strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in frame.splitlines())
        events.append((fields.get("event"), json.loads(fields["data"])))
    return events
