"""The simulator's tokenizer and its deterministic text.

One token is a run of at most four word characters or one punctuation mark, so English text comes out
near the usual four characters per token. The same rule counts prompt tokens, keys the prefix cache and
measures the answers, so every number the simulator reports agrees with every other.

Answers are slices of one fixed, pseudo-random stream of short words, each word exactly one token. A
64-bit key picks where the slice starts, so the same (model, prompt, seed, choice) always reads the same
words, and producing an answer costs a slice, not a random-number generator.
"""

from __future__ import annotations

import hashlib
import random
import re

__all__ = ["count_tokens", "split_pieces", "stable_key", "tokenize", "word_pieces"]

_TOKEN = re.compile(r"\w{1,4}|[^\w\s]")
# Like _TOKEN, but keeps the whitespace before each token (and any at the end), so the pieces of a
# text join back into exactly that text: what a stream must send.
_PIECE = re.compile(r"\s*(?:\w{1,4}|[^\w\s])|\s+")

# Every word is at most four letters: exactly one token, so a piece of an answer is a token.
_VOCABULARY = (
    "the and to of in is it that for on with as was this be at by from or an are not but all we can "
    "will one two more some time when what how data node load path rail gate lock line safe fast "
    "slow work plan test fine good next then now here each many most also into only over both just "
    "like make made well very much such long high low new old same real true open keep step flow "
    "view sign note idea mode rule zone cell byte code task team yard car cab hub key map set run "
    "use way day end top log tag bit row net sky sea sun rain wind snow tree leaf root seed farm "
    "town city road hill lake pond rock sand wave tide ship boat crew "
)
_WORDS = tuple(_VOCABULARY.split())
_STREAM_LENGTH = 1 << 16


def _build_stream() -> tuple[str, ...]:
    # A fixed seed: the stream is part of the simulator's observable behaviour and must not change
    # between runs or processes.
    rng = random.Random(0x1A7E_10C4)
    pieces: list[str] = []
    capital = True
    since_stop = 0
    for _ in range(_STREAM_LENGTH):
        roll = rng.random()
        if since_stop >= 4 and roll < 0.07:
            pieces.append(".")
            capital, since_stop = True, 0
        elif since_stop >= 3 and roll < 0.12:
            pieces.append(",")
            since_stop += 1
        else:
            word = rng.choice(_WORDS)
            pieces.append(" " + (word.capitalize() if capital else word))
            capital = False
            since_stop += 1
    return tuple(pieces)


_STREAM = _build_stream()


def tokenize(text: str) -> list[str]:
    """The tokens of ``text`` (whitespace is not a token)."""
    return _TOKEN.findall(text)


def count_tokens(text: str) -> int:
    """How many tokens ``text`` holds."""
    return len(_TOKEN.findall(text))


def split_pieces(text: str) -> list[str]:
    """``text`` cut into stream pieces, one token each, that join back into ``text``."""
    return _PIECE.findall(text)


def stable_key(*parts: str | int | bytes) -> int:
    """A 64-bit key of ``parts`` that is the same in every process (unlike ``hash``)."""
    digest = hashlib.blake2b(digest_size=8)
    for part in parts:
        data = part if isinstance(part, bytes) else str(part).encode()
        digest.update(len(data).to_bytes(4, "little"))
        digest.update(data)
    return int.from_bytes(digest.digest(), "little")


def word_pieces(key: int, count: int) -> list[str]:
    """``count`` one-token pieces of deterministic prose, chosen by ``key``; they read as sentences."""
    if count <= 0:
        return []
    start = key % _STREAM_LENGTH
    pieces = list(_STREAM[start : start + count])
    while len(pieces) < count:
        pieces.extend(_STREAM[: count - len(pieces)])
    # A slice may begin mid-sentence or on punctuation; an answer should not.
    first = pieces[0].strip()
    pieces[0] = first.capitalize() if first.isalnum() else "So"
    return pieces
