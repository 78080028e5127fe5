"""Plausible JSON values for a JSON Schema: structured outputs and tool-call arguments.

Covers what OpenAI's structured outputs and tool schemas use in practice: types (and type lists),
``properties``/``required``, ``items``, ``enum``/``const``, ``anyOf``/``oneOf``/``allOf``, local
``$ref`` into ``$defs``/``definitions``, string ``format`` and numeric bounds. Every declared property
is filled (a superset of ``required``), so strict schemas are satisfied too.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

__all__ = ["fill_schema"]

_MAX_DEPTH = 8
_FORMATS = {
    "date-time": "2024-05-17T09:30:00Z",
    "date": "2024-05-17",
    "time": "09:30:00",
    "email": "someone@example.com",
    "uri": "https://example.com/item",
    "url": "https://example.com/item",
    "hostname": "example.com",
    "ipv4": "192.0.2.10",
    "ipv6": "2001:db8::10",
}
_WORDS = ("alpha", "bravo", "delta", "harbor", "signal", "route", "switch", "north", "amber", "quartz")


class _Filler:
    __slots__ = ("rng", "root")

    def __init__(self, root: Mapping[str, Any], rng: random.Random) -> None:
        self.root = root
        self.rng = rng

    def resolve(self, ref: str) -> Mapping[str, Any]:
        # Only local references ("#/$defs/Name"); anything else yields an unconstrained value.
        node: Any = self.root
        for part in ref.removeprefix("#/").split("/") if ref.startswith("#") else ["\0"]:
            node = node.get(part.replace("~1", "/").replace("~0", "~")) if isinstance(node, Mapping) else None
        return node if isinstance(node, Mapping) else {}

    def value(self, schema: Any, depth: int = 0) -> Any:
        if not isinstance(schema, Mapping) or depth > _MAX_DEPTH:
            return None if depth > _MAX_DEPTH else self.words()
        if "$ref" in schema:
            return self.value(self.resolve(str(schema["$ref"])), depth + 1)
        if "const" in schema:
            return schema["const"]
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            return self.rng.choice(schema["enum"])
        for key in ("anyOf", "oneOf"):
            options = schema.get(key)
            if isinstance(options, list) and options:
                usable = [o for o in options if not (isinstance(o, Mapping) and o.get("type") == "null")]
                return self.value((usable or options)[0], depth + 1)
        if isinstance(schema.get("allOf"), list):
            merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
            for part in schema["allOf"]:
                part = self.resolve(part["$ref"]) if isinstance(part, Mapping) and "$ref" in part else part
                if isinstance(part, Mapping):
                    merged.setdefault("properties", {}).update(part.get("properties") or {})
                    merged.setdefault("type", part.get("type"))
            return self.value(merged, depth + 1)
        return self.typed(schema, self.type_of(schema), depth)

    @staticmethod
    def type_of(schema: Mapping[str, Any]) -> str:
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "null")
        if isinstance(kind, str):
            return kind
        if "properties" in schema:
            return "object"
        return "array" if "items" in schema else "string"

    def typed(self, schema: Mapping[str, Any], kind: str, depth: int) -> Any:
        if kind == "object":
            return self.object(schema, depth)
        if kind == "array":
            fewest = int(schema.get("minItems", 1))
            most = max(fewest, min(int(schema.get("maxItems", 3)), fewest + 2))
            count = self.rng.randint(fewest, most)
            return [self.value(schema.get("items", {}), depth + 1) for _ in range(count)]
        if kind == "integer":
            low, high = self.bounds(schema, 0, 100)
            return self.rng.randint(int(low), int(high))
        if kind == "number":
            low, high = self.bounds(schema, 0, 100)
            return round(self.rng.uniform(low, high), 2)
        if kind == "boolean":
            return self.rng.random() < 0.5
        if kind == "null":
            return None
        return self.string(schema)

    def object(self, schema: Mapping[str, Any], depth: int) -> dict[str, Any]:
        properties = schema.get("properties")
        properties = properties if isinstance(properties, Mapping) else {}
        required = schema.get("required")
        names = list(properties)
        names += [r for r in required if r not in properties] if isinstance(required, list) else []
        return {str(name): self.value(properties.get(name, {}), depth + 1) for name in names}

    @staticmethod
    def bounds(schema: Mapping[str, Any], low: float, high: float) -> tuple[float, float]:
        lo = schema.get("minimum", schema.get("exclusiveMinimum"))
        hi = schema.get("maximum", schema.get("exclusiveMaximum"))
        lo = lo if isinstance(lo, int | float) else low
        hi = hi if isinstance(hi, int | float) else max(high, lo + 100)
        # Exclusive bounds are honoured by stepping inside them (by one, which suits integers).
        lo += 1 if "exclusiveMinimum" in schema and "minimum" not in schema else 0
        hi -= 1 if "exclusiveMaximum" in schema and "maximum" not in schema else 0
        return (lo, hi) if lo <= hi else (hi, lo)

    def words(self, count: int | None = None) -> str:
        count = count if count is not None else self.rng.randint(1, 3)
        return " ".join(self.rng.choice(_WORDS) for _ in range(count))

    def string(self, schema: Mapping[str, Any]) -> str:
        fmt = schema.get("format")
        if fmt == "uuid":
            a, b, c, d, e = (self.rng.getrandbits(bits) for bits in (32, 16, 12, 12, 48))
            return f"{a:08x}-{b:04x}-4{c:03x}-8{d:03x}-{e:012x}"
        text = _FORMATS.get(str(fmt)) or self.words()
        low = int(schema.get("minLength", 0))
        high = schema.get("maxLength")
        while len(text) < low:
            text += " " + self.words(1)
        return text[: int(high)] if high is not None else text


def fill_schema(schema: Mapping[str, Any], key: int) -> Any:
    """A value that fits ``schema``, the same for the same ``key``.

    A schema too odd to follow (a non-numeric ``minItems``, say) yields an empty object rather than
    an error: a real model would produce *something*, and the gateway under test should see it.
    """
    try:
        return _Filler(schema, random.Random(key)).value(schema)
    except (TypeError, ValueError, AttributeError):
        return {}
