"""Reading a response body within a cap, decoding gzip and deflate layer by layer as it arrives.

httpx decodes a whole chunk at once, so a few kilobytes of nested gzip can become gigabytes
before any cap is checked. Here every layer inflates at most what the cap still allows, and
a body that would pass it is refused before the bytes exist.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator

ACCEPT_ENCODING = "gzip, deflate"
GZIP_WBITS = 16 + zlib.MAX_WBITS
IDENTITY = ("", "identity")


class BodyTooLarge(Exception):
    """The body, decoded, passes the cap."""


class BodyUndecodable(Exception):
    """The body is not what its Content-Encoding says (or uses one legation did not ask for)."""


class _Layer:
    """One Content-Encoding, inflated with a bound on its output."""

    def __init__(self, encoding: str) -> None:
        if encoding in ("gzip", "x-gzip"):
            self._inflater = zlib.decompressobj(GZIP_WBITS)
        elif encoding == "deflate":
            self._inflater = zlib.decompressobj(zlib.MAX_WBITS)
        else:
            raise BodyUndecodable(f"unsupported Content-Encoding {encoding!r}")
        self._encoding = encoding
        self._deflate = encoding == "deflate"
        self._started = False

    def inflate(self, data: bytes, budget: int) -> bytes:
        """Up to ``budget`` bytes out of ``data``; BodyTooLarge if it holds more."""
        try:
            out = self._inflater.decompress(data, budget + 1)
        except zlib.error as exc:
            if self._deflate and not self._started:  # "deflate" without its zlib header
                self._inflater, self._deflate = zlib.decompressobj(-zlib.MAX_WBITS), False
                return self.inflate(data, budget)
            raise BodyUndecodable(f"the body is not valid {self._encoding} ({exc})") from None
        self._started = True
        if len(out) > budget or self._inflater.unconsumed_tail:
            raise BodyTooLarge()
        return out

    def flush(self, budget: int) -> bytes:
        out = self._inflater.flush()
        if len(out) > budget:
            raise BodyTooLarge()
        return out


async def read_body(raw: AsyncIterator[bytes], content_encoding: str, limit: int) -> bytes:
    """The decoded body of ``raw`` chunks, at most ``limit`` bytes at every stage."""
    encodings = [e.strip().lower() for e in content_encoding.split(",") if e.strip().lower() not in IDENTITY]
    layers = [_Layer(e) for e in reversed(encodings)]  # the last encoding applied comes off first
    produced = [0] * (len(layers) + 1)
    parts: list[bytes] = []

    def push(data: bytes, depth: int) -> None:
        if depth == len(layers):
            produced[depth] += len(data)
            if produced[depth] > limit:
                raise BodyTooLarge()
            parts.append(data)
            return
        out = layers[depth].inflate(data, limit - produced[depth])
        produced[depth] += len(out)
        if out:
            push(out, depth + 1)

    async for chunk in raw:
        if chunk:
            push(chunk, 0)
    for depth, layer in enumerate(layers):
        tail = layer.flush(limit - produced[depth])
        produced[depth] += len(tail)
        if tail:
            push(tail, depth + 1)
    return b"".join(parts)
