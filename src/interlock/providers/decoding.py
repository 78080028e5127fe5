"""Incremental gzip / deflate decoding of a response body, bounded so a small compressed body
cannot expand into unbounded memory."""

from __future__ import annotations

import zlib

from interlock.providers.transport import ProtocolError

__all__ = ["Decoder"]


class Decoder:
    """Decodes one body piece by piece."""

    __slots__ = ("_raw_fallback", "_z")

    def __init__(self, wbits: int, raw_fallback: bool) -> None:
        self._z = zlib.decompressobj(wbits)
        self._raw_fallback = raw_fallback

    @classmethod
    def for_encoding(cls, encoding: str) -> Decoder:
        """The decoder for a ``Content-Encoding``; :class:`ProtocolError` for one not supported."""
        if encoding in ("gzip", "x-gzip"):
            return cls(16 + zlib.MAX_WBITS, False)
        if encoding == "deflate":
            return cls(zlib.MAX_WBITS, True)  # zlib-wrapped as the spec says; raw deflate as some send
        raise ProtocolError(f"unsupported content encoding {encoding[:40]!r}")

    def feed(self, data: bytes, limit: int) -> bytes:
        """Decode ``data``; :class:`ProtocolError` if it decodes to more than ``limit`` bytes (a
        compressed body can expand a thousandfold)."""
        try:
            out = self._z.decompress(data, limit + 1)
        except zlib.error:
            if not self._raw_fallback:
                raise ProtocolError("body does not decode as its content encoding says") from None
            self._raw_fallback = False
            self._z = zlib.decompressobj(-zlib.MAX_WBITS)
            return self.feed(data, limit)
        if len(out) > limit or self._z.unconsumed_tail:
            raise ProtocolError(f"body decodes to more than {limit} bytes")
        return out

    def flush(self) -> bytes:
        """What the decoder still holds at the end of the body."""
        try:
            return self._z.flush()
        except zlib.error:
            raise ProtocolError("body does not decode as its content encoding says") from None
