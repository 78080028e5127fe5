"""The audit log's hash chain: how an entry's hash is made, and how a chain is checked.

Each entry stores ``prev_hash`` (the hash of the entry before it; 64 zeros for the first) and
``hash``, the SHA-256 of its canonical JSON: the entry's position (``seq``), time, actor, action,
target, detail, before, after and ``prev_hash``, with keys sorted and no whitespace. Editing an
entry changes its content, so its hash no longer matches; deleting one leaves a gap in ``seq`` and a
``prev_hash`` that names a missing entry; moving one changes its ``seq``, which is hashed. The chain's
head (the last position and hash) is kept in its own row, so deleting the newest entries shows too.

What the chain cannot show alone: someone with write access to the database who rewrites an entry,
recomputes every hash after it and moves the head. Record the head hash that ``interlock audit
verify`` prints somewhere else (a ticket, a log shipped off the machine) to anchor it.

Values are hashed as they read back from the database: JSON is normalised first (an integral float
becomes an int, as PostgreSQL's ``jsonb`` makes it), so SQLite and PostgreSQL agree.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

__all__ = ["GENESIS_HASH", "ChainReport", "ChainWalker", "canonical", "entry_hash", "plain_json"]

GENESIS_HASH = "0" * 64
"""The ``prev_hash`` of the first entry."""


def plain_json(value: Any) -> Any:
    """``value`` as JSON reads it back: mappings to dicts, tuples to lists, datetimes to ISO text,
    integral floats to ints; anything else JSON cannot hold becomes its text."""
    return _normalise(orjson.loads(orjson.dumps(value, default=_fallback)))


def _fallback(value: object) -> object:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, frozenset | set):
        return sorted(value, key=str)
    return str(value)


def _normalise(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _normalise(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalise(v) for v in value]
    return value


def _timestamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical(fields: Mapping[str, Any]) -> bytes:
    """The bytes an entry's hash is taken over. ``fields`` holds ``seq``, ``at``, ``actor_key_id``,
    ``actor``, ``action``, ``target``, ``detail``, ``before``, ``after`` and ``prev_hash``."""
    content = {
        "seq": int(fields["seq"]),
        "at": _timestamp(fields["at"]),
        "actor_key_id": fields["actor_key_id"],
        "actor": fields["actor"],
        "action": fields["action"],
        "target": fields["target"],
        "detail": _normalise(fields["detail"] or {}),
        "before": _normalise(fields["before"]),
        "after": _normalise(fields["after"]),
        "prev_hash": fields["prev_hash"],
    }
    return orjson.dumps(content, option=orjson.OPT_SORT_KEYS)


def entry_hash(fields: Mapping[str, Any]) -> str:
    """The SHA-256 (hex) of :func:`canonical`."""
    return hashlib.sha256(canonical(fields)).hexdigest()


@dataclass(frozen=True, slots=True)
class ChainReport:
    """What a walk of the chain found. ``ok`` is false from the first problem on; ``seq`` and
    ``entry_id`` name the first entry found wrong (``None`` for a problem at the head)."""

    ok: bool
    entries: int
    head_seq: int
    head_hash: str
    problem: str | None = None
    seq: int | None = None
    entry_id: int | None = None


class ChainWalker:
    """Checks entries fed in ``seq`` order, batch by batch, and stops at the first problem."""

    __slots__ = ("_count", "_expected_seq", "_prev_hash", "report")

    def __init__(self) -> None:
        self._expected_seq = 1
        self._prev_hash = GENESIS_HASH
        self._count = 0
        self.report: ChainReport | None = None

    def feed(self, rows: Iterable[Mapping[str, Any]]) -> bool:
        """Check ``rows``; ``False`` once a problem was found (then :attr:`report` says which)."""
        for row in rows:
            problem = self._problem(row)
            if problem is not None:
                self.report = ChainReport(
                    False,
                    self._count,
                    self._expected_seq - 1,
                    self._prev_hash,
                    problem,
                    row["seq"],
                    row["id"],
                )
                return False
            self._count += 1
            self._expected_seq = int(row["seq"]) + 1
            self._prev_hash = row["hash"]
        return True

    def _problem(self, row: Mapping[str, Any]) -> str | None:
        seq = int(row["seq"])
        if seq != self._expected_seq:
            missing = f"{self._expected_seq}" + (f"..{seq - 1}" if seq - 1 > self._expected_seq else "")
            return f"entry {missing} is missing (deleted or moved): the chain jumps to {seq}"
        if row["prev_hash"] != self._prev_hash:
            return f"entry {seq} does not follow the entry before it (an entry was replaced or reordered)"
        if entry_hash(row) != row["hash"]:
            return f"entry {seq} was edited: its content does not match its hash"
        return None

    def finish(self, head_seq: int, head_hash: str) -> ChainReport:
        """The report, once every row was fed, checked against the chain head."""
        if self.report is not None:
            return self.report
        last = self._expected_seq - 1
        if head_seq != last or head_hash != self._prev_hash:
            if head_seq > last:
                problem = f"entries {last + 1}..{head_seq} are missing (deleted from the end)"
            else:
                problem = f"the chain head (entry {head_seq}) does not match the last entry ({last})"
            return ChainReport(False, self._count, last, self._prev_hash, problem, last + 1, None)
        return ChainReport(True, self._count, last, self._prev_hash)
