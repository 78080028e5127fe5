"""Reading scenario files: YAML in, a validated :class:`~interlock.chaos.scenario.Scenario` out, or
a :class:`ScenarioError` that lists every problem with its key and line. Shipped scenarios are
found by name."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from interlock.chaos.scenario import ACTION_KINDS, Scenario
from interlock.config.yaml_paths import YamlPath, line_numbers, where

__all__ = ["ScenarioError", "load_scenario", "parse_scenario", "resolve_scenario", "shipped_scenarios"]


class ScenarioError(Exception):
    """A scenario that cannot be run; the message lists every problem and where it is."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"invalid scenario {source}:\n" + "\n".join(f"  - {p}" for p in problems))


def _message(err: Any) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    if kind == "union_tag_invalid":
        tag = err.get("ctx", {}).get("tag", "?")
        return f"unknown action '{tag}' (known: {', '.join(ACTION_KINDS)})"
    if kind == "union_tag_not_found":
        return f"every action needs 'do': one of {', '.join(ACTION_KINDS)}"
    return str(err["msg"]).removeprefix("Value error, ")


def _loc(err: Any) -> YamlPath:
    """The error's path, without the union tag pydantic inserts after ``actions[i]``."""
    loc: list[str | int] = list(err["loc"])
    if len(loc) >= 3 and loc[0] == "actions" and loc[2] in ACTION_KINDS:
        del loc[2]
    return tuple(loc)


def parse_scenario(text: str, source: str = "<scenario>") -> Scenario:
    """Validate YAML text into a :class:`Scenario`; :class:`ScenarioError` lists what is wrong."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ScenarioError(source, [f"not valid YAML: {exc}"]) from None
    if not isinstance(data, dict):
        raise ScenarioError(source, ["the top level must be a mapping (name, rps, phases, actions …)"])
    lines = line_numbers(node)
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = _loc(err)
            message = _message(err)
            if not loc and err["type"] == "value_error":  # the cross-field checks, one per problem
                problems.extend(_locate_each(message, lines))
                continue
            problems.append(f"{where(loc, lines)}: {message}" if loc else message)
        raise ScenarioError(source, problems) from None


def _locate_each(message: str, lines: dict[YamlPath, int]) -> list[str]:
    """Cross-field problems come as lines of ``actions[i].key: text``: add each one's line."""
    located = []
    for problem in message.splitlines():
        match = re.match(r"^actions\[(\d+)\](?:\.(\w+))?(: .*)$", problem)
        if match is None:
            located.append(problem)
            continue
        loc: YamlPath = ("actions", int(match.group(1)))
        if match.group(2):
            loc = (*loc, match.group(2))
        located.append(where(loc, lines) + match.group(3))
    return located


def shipped_scenarios() -> dict[str, Path]:
    """The scenarios that come with Interlock, by name."""
    folder = resources.files("interlock.chaos") / "scenarios"
    found = {}
    for entry in folder.iterdir():
        if entry.name.endswith(".yaml"):
            found[entry.name.removesuffix(".yaml")] = Path(str(entry))
    return dict(sorted(found.items()))


def resolve_scenario(ref: str) -> Path:
    """A scenario file: ``ref`` as a path, else a shipped scenario by name or unique prefix
    (``kill-one``, ``scenarios/kill-one.yaml`` → ``kill-one-deployment``)."""
    path = Path(ref)
    if path.is_file():
        return path
    shipped = shipped_scenarios()
    name = path.name.removesuffix(".yaml")
    matches = [shipped[name]] if name in shipped else [p for n, p in shipped.items() if n.startswith(name)]
    if len(matches) == 1:
        return matches[0]
    known = ", ".join(shipped)
    raise ScenarioError(ref, [f"no such file, and no shipped scenario of that name (shipped: {known})"])


def load_scenario(ref: str | Path) -> Scenario:
    """Read and validate a scenario file (or a shipped scenario, by name)."""
    path = ref if isinstance(ref, Path) else resolve_scenario(ref)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(str(path), [f"cannot read the file: {exc.strerror or exc}"]) from None
    return parse_scenario(text, str(path))
