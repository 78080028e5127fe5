"""The layering rule, checked from the sources.

Every ``import interlock.X…`` and ``from interlock.X… import …`` statement counts, those under
``if TYPE_CHECKING:`` and inside functions included: a cycle between packages is a cycle whether
Python meets it at start-up or not. ``interlock/__init__.py`` (the public facade) is not a layer.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from itertools import pairwise
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "src" / "interlock"
CORE = "core"

Edge = tuple[str, str, str]
"""(importing package, imported package, where: ``path:line module``)."""


def _package_of(path: Path) -> str | None:
    parts = path.relative_to(ROOT).parts
    if len(parts) == 1:
        return None if parts[0] == "__init__.py" else parts[0].removesuffix(".py")
    return parts[0]


def _imported(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        if node.module == "interlock":
            return [f"interlock.{alias.name}" for alias in node.names]
        return [node.module]
    return []


def import_edges() -> list[Edge]:
    """Every import of one top-level package of interlock by another."""
    edges: list[Edge] = []
    for path in sorted(ROOT.rglob("*.py")):
        source = _package_of(path)
        if source is None:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            for module in _imported(node):
                parts = module.split(".")
                if parts[0] != "interlock" or len(parts) < 2 or parts[1] == source:
                    continue
                if (ROOT / parts[1]).is_dir() or (ROOT / f"{parts[1]}.py").is_file():
                    where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)} {module}"
                    edges.append((source, parts[1], where))
    return edges


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path that starts and ends at the same package, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start)
            if found:
                return found
    return None


def test_no_cycle_between_packages() -> None:
    edges = import_edges()
    graph: dict[str, set[str]] = defaultdict(set)
    for source, target, _ in edges:
        graph[source].add(target)
    cycle = find_cycle(graph)
    if cycle is None:
        return
    lines = [f"packages import each other in a cycle: {' -> '.join(cycle)}"]
    for source, target in pairwise(cycle):
        lines.append(f"  {source} -> {target}:")
        lines.extend(f"    {where}" for s, t, where in edges if (s, t) == (source, target))
    raise AssertionError("\n".join(lines))


def test_core_imports_nothing_above_it() -> None:
    offending = [where for source, target, where in import_edges() if source == CORE]
    assert not offending, "interlock.core must import nothing of interlock outside core:\n  " + "\n  ".join(
        offending
    )


def test_the_check_sees_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
