"""Automatic prefix caching over blocks of tokens, as vLLM does it.

A prompt is cut into fixed-size blocks of tokens. Each full block is keyed by a hash that covers the
block's tokens *and* the key of the block before it, so a key names a whole prefix, not one block. A
request's leading blocks found in the cache are its cached tokens; the rest are computed (the prefill
cost) and inserted. Blocks are evicted least recently used first.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

__all__ = ["PrefixCache"]


class PrefixCache:
    """A bounded LRU set of prefix-block keys.

    Keys use Python's ``hash``, which differs between processes: the cache lives in one process, so
    it only has to agree with itself, and ``hash`` of a tuple of strings is far cheaper than a digest.
    """

    __slots__ = ("_blocks", "block_size", "capacity")

    def __init__(self, block_size: int, capacity: int) -> None:
        self.block_size = block_size
        self.capacity = capacity
        self._blocks: OrderedDict[int, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._blocks)

    def clear(self) -> None:
        """Forget every block."""
        self._blocks.clear()

    def admit(self, tokens: Sequence[str]) -> int:
        """Look ``tokens`` up, insert what was missing, and return how many leading tokens were cached.

        At least one token is always left uncached: an engine must compute the last position to produce
        the first output token, so a prompt is never served entirely from cache.
        """
        if self.capacity == 0:
            return 0
        blocks = self._blocks
        size = self.block_size
        full = len(tokens) // size
        key = 0
        cached_blocks = 0
        missing = False
        for i in range(full):
            key = hash((key, *tokens[i * size : (i + 1) * size]))
            if key in blocks:
                blocks.move_to_end(key)
                # A block past the first miss was computed anyway: it refreshes, it does not count.
                cached_blocks += not missing
            else:
                missing = True
                blocks[key] = None
        while len(blocks) > self.capacity:
            blocks.popitem(last=False)
        return min(cached_blocks * size, max(len(tokens) - 1, 0))
