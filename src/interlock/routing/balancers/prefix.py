"""Prefix affinity for self-hosted replicas: send a request where its prompt prefix is likely cached.

Each replica gets an approximate record of the prompt prefixes routed to it: the prompt is cut into
fixed-size blocks, each block hashed together with everything before it (so a block hash stands for
the whole prefix up to it, as an engine's prefix cache keys its KV blocks), and the hashes kept in a
bounded LRU per replica. That is a radix tree over block boundaries, flattened. A request goes to the
replica holding its longest prefix when the match is long enough — unless that would pile work onto
a hot replica: when the loads are out of balance the least-loaded replica wins, and so hot prefixes
spread to more replicas instead of melting one (the SGLang router and llm-d scheduler work this way).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from interlock.routing.balancers.base import RouteHints
from interlock.routing.load import LoadTracker
from interlock.routing.snapshot import Deployment

__all__ = ["PrefixAffinity", "block_hashes"]


def block_hashes(text: str, block_chars: int) -> list[int]:
    """Chained hashes of the prompt's whole blocks."""
    hashes: list[int] = []
    previous = 0
    for start in range(0, len(text) - block_chars + 1, block_chars):
        previous = hash((previous, text[start : start + block_chars]))
        hashes.append(previous)
    return hashes


class PrefixAffinity:
    def __init__(
        self,
        load: LoadTracker,
        *,
        block_chars: int = 64,
        capacity_blocks: int = 200_000,
        match_threshold: float = 0.3,
        balance_abs: int = 32,
        balance_rel: float = 1.5,
    ) -> None:
        self._load = load
        self._block = block_chars
        self._capacity = capacity_blocks
        self._threshold = match_threshold
        self._abs = balance_abs
        self._rel = balance_rel
        self._trees: dict[str, OrderedDict[int, None]] = {}

    def choose(self, candidates: Sequence[Deployment], hints: RouteHints) -> Deployment:
        blocks = block_hashes(hints.prompt_text(), self._block)
        in_flight = {d.id: self._load.get(d.id).in_flight for d in candidates}
        least = min(candidates, key=lambda d: (in_flight[d.id], len(self._tree(d.id))))
        chosen = least
        if blocks:
            best, matched = self._longest_match(candidates, blocks, in_flight)
            if (
                best is not None
                and matched / len(blocks) >= self._threshold
                and not self._hot(in_flight[best.id], in_flight[least.id])
            ):
                chosen = best
            self._insert(chosen.id, blocks)
        return chosen

    def _hot(self, load: int, lowest: int) -> bool:
        """Whether ``load`` is out of balance with the least-loaded replica's."""
        return load - lowest > self._abs and load > lowest * self._rel

    def _longest_match(
        self, candidates: Sequence[Deployment], blocks: list[int], in_flight: dict[str, int]
    ) -> tuple[Deployment | None, int]:
        """The replica holding the longest prefix; among equals, the least loaded."""
        best: Deployment | None = None
        best_key = (0, 0)
        for deployment in candidates:
            tree = self._tree(deployment.id)
            length = 0
            for block in blocks:
                if block not in tree:
                    break
                length += 1
            key = (length, -in_flight[deployment.id])
            if length and (best is None or key > best_key):
                best, best_key = deployment, key
        return best, best_key[0]

    def _tree(self, deployment_id: str) -> OrderedDict[int, None]:
        tree = self._trees.get(deployment_id)
        if tree is None:
            tree = self._trees[deployment_id] = OrderedDict()
        return tree

    def _insert(self, deployment_id: str, blocks: list[int]) -> None:
        tree = self._tree(deployment_id)
        for block in blocks:
            tree[block] = None
            tree.move_to_end(block)
        while len(tree) > self._capacity:
            tree.popitem(last=False)
