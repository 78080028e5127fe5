"""Where a key is in a YAML document: paths like ``models.chat.deployments[1].price`` and their lines,
for error messages that point at the exact place."""

from __future__ import annotations

import yaml

__all__ = ["YamlPath", "line_numbers", "where"]

YamlPath = tuple[str | int, ...]


def line_numbers(node: yaml.Node | None, path: YamlPath = ()) -> dict[YamlPath, int]:
    """The 1-based line of every key and list item under ``node``, by path."""
    found: dict[YamlPath, int] = {}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            sub = (*path, str(key_node.value))
            found[sub] = key_node.start_mark.line + 1
            found.update(line_numbers(value_node, sub))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            sub = (*path, index)
            found[sub] = item.start_mark.line + 1
            found.update(line_numbers(item, sub))
    return found


def where(path: YamlPath, lines: dict[YamlPath, int]) -> str:
    """``models.chat.deployments[1].pric (line 12)``: the path, with the line of its nearest known part."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    probe = path
    while probe and probe not in lines:
        probe = probe[:-1]
    return f"{text} (line {lines[probe]})" if probe else text
