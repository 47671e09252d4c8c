"""Extraction in a process of its own, bounded in memory and time: ``python -m monitor.pages.worker``.

A hostile or huge page (10 MB of one-word paragraphs) took 93 s and 2 GB inside the daemon,
out of reach of its signals and of any limit. Here a child process holds at most
``MEMORY_BYTES`` of address space (past that, extraction raises MemoryError and the child
answers and ends), and the parent gives each page ``TIME_LIMIT`` seconds, then kills the child;
a stop request (SIGTERM) kills it at once. The child serves one page after another; messages
are a 4-byte length and JSON, both ways.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import resource
import struct
import sys
from typing import Any, BinaryIO

import structlog

from monitor.pages.documents import document_text
from monitor.pages.extract import Extracted, extract_with_fallback
from storage.models import Attachment

log = structlog.get_logger(__name__)

MEMORY_BYTES = 600 * 1024 * 1024  # the child's address space
TIME_LIMIT = 30.0  # seconds for one page
HEADER = struct.Struct(">I")


class ExtractionFailed(Exception):
    """The page could not be extracted: what happened, in words; ``overran`` when it was the
    bounds (memory, time, the process killed), not an error of the extractor on this page."""

    def __init__(self, reason: str, *, overran: bool = True) -> None:
        super().__init__(reason)
        self.overran = overran


class ExtractionWorker:
    """The parent's side: one child at a time, started when needed, killed when it overruns."""

    def __init__(self, memory_bytes: int = MEMORY_BYTES, time_limit: float = TIME_LIMIT) -> None:
        self.memory_bytes, self.time_limit = memory_bytes, time_limit
        self._child: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()

    async def extract(self, extractor: str, html: str, url: str) -> tuple[str, Extracted]:
        """``extract_with_fallback`` in the child; :class:`ExtractionFailed` past the bounds."""
        answer = await self._exchange({"extractor": extractor, "html": html, "url": url}, "extraction")
        found = answer["extracted"]
        found["attachments"] = tuple(Attachment(**a) for a in found["attachments"])
        found["translations"] = tuple((language, url) for language, url in found["translations"])
        return answer["extractor"], Extracted(**found)

    async def document_text(self, content: bytes, content_type: str, url: str) -> str | None:
        """The text of an attached document (PDF, DOCX) in the child; None for a kind it cannot read.
        :class:`ExtractionFailed` past the bounds, or when the document is broken."""
        answer = await self._exchange({"document": base64.b64encode(content).decode(), "content_type": content_type,
                                       "url": url}, "reading the document")
        text: str | None = answer.get("text")
        return text

    async def _exchange(self, request: dict[str, Any], what: str) -> dict[str, Any]:
        """One request to the child and its answer, within the time limit; the child is killed when
        it overruns, ends, runs out of memory, or the caller is cancelled (the daemon stopping)."""
        data = json.dumps(request).encode()
        async with self._lock:
            try:
                async with asyncio.timeout(self.time_limit):
                    answer = await self._ask(data)
            except TimeoutError:
                await self._kill()
                raise ExtractionFailed(f"{what} took longer than {self.time_limit:g} s") from None
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                await self._kill()
                raise ExtractionFailed(f"the extraction process ended ({type(exc).__name__})") from None
            except BaseException:  # cancelled: the daemon is stopping
                await self._kill()
                raise
        if "error" in answer:
            if answer.get("overran"):
                await self._kill()  # after MemoryError a fresh child is the safe one
            raise ExtractionFailed(answer["error"], overran=bool(answer.get("overran")))
        return answer

    async def _ask(self, request: bytes) -> dict[str, Any]:
        child = await self._started()
        assert child.stdin is not None and child.stdout is not None
        child.stdin.write(HEADER.pack(len(request)) + request)
        await child.stdin.drain()
        (length,) = HEADER.unpack(await child.stdout.readexactly(HEADER.size))
        answer: dict[str, Any] = json.loads(await child.stdout.readexactly(length))
        return answer

    async def _started(self) -> asyncio.subprocess.Process:
        if self._child is None or self._child.returncode is not None:
            self._child = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "monitor.pages.worker", str(self.memory_bytes),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
        return self._child

    async def _kill(self) -> None:
        child, self._child = self._child, None
        if child is not None and child.returncode is None:
            child.kill()
            await asyncio.shield(child.wait())

    async def close(self) -> None:
        child, self._child = self._child, None
        if child is not None and child.returncode is None:
            assert child.stdin is not None
            child.stdin.close()  # the child ends at the end of its input
            try:
                await asyncio.wait_for(asyncio.shield(child.wait()), 2.0)
            except TimeoutError:
                child.kill()
                await asyncio.shield(child.wait())

    async def __aenter__(self) -> ExtractionWorker:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


def _serve(memory_bytes: int, source: BinaryIO, sink: BinaryIO) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    while header := source.read(HEADER.size):
        (length,) = HEADER.unpack(header)
        request = json.loads(source.read(length))
        ends = False
        try:
            if "document" in request:
                answer: dict[str, Any] = {"text": document_text(base64.b64decode(request["document"]),
                                                                request["content_type"], request["url"])}
            else:
                name, extracted = extract_with_fallback(request["extractor"], request["html"], request["url"])
                answer = {"extractor": name, "extracted": dataclasses.asdict(extracted)}
        except MemoryError:
            answer, ends = {"error": f"extraction needed more than {memory_bytes // 2**20} MB of memory",
                            "overran": True}, True
        except Exception as exc:  # the page's failure, said plainly
            answer = {"error": f"could not process the page: {type(exc).__name__}: {exc}"}
        data = json.dumps(answer).encode()
        sink.write(HEADER.pack(len(data)) + data)
        sink.flush()
        if ends:
            return


if __name__ == "__main__":
    _serve(int(sys.argv[1]), sys.stdin.buffer, sys.stdout.buffer)
