"""Media files of posts, kept before their links expire: content-addressed, each stored once.

The web preview shows photos, video thumbnails and small videos through CDN URLs that
expire within days. When a page of posts is saved, the URLs of its new versions' media
are queued (``post_media``, in the same transaction), and downloaded right after, through
legation's HTTP client (proxy, per-host delay, retries, the size cap, the address guard),
only from the host the page named: a redirect elsewhere is refused. A file is written to a
temporary name and renamed to ``<dir>/ab/abcdef….ext`` by its SHA-256, so two posts with
the same image share one file and no partial file is ever visible. A failed download is
retried in later rounds while the URL is fresh (a re-read page refreshes it); after
``url_ttl`` it is ``expired``. Nothing here can fail the posts: they are saved first.
"""

from __future__ import annotations

import asyncio
import hashlib
import mimetypes
import os
import struct
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import structlog

from monitor.config.settings import MediaConfig
from monitor.errors import FetchError, FetchFailed, ResponseTooLarge, UnsafeURL
from monitor.net.client import HttpClient
from monitor.net.retry import backoff
from storage.db import Connection, transaction
from storage.media import MediaDownload, get_due_media, save_media_failure, save_media_file
from storage.models import utc_in, utc_now

log = structlog.get_logger(__name__)

MAX_PER_PAGE = 60  # downloads per page saved: a page's worth of albums, then the posts go on
MAX_ATTEMPTS = 6
RETRY_FIRST_WAIT = 300.0  # seconds; doubling
REDIRECTS = 3
HOST_FAILURES_IN_A_ROW = 3  # then the host's files wait HOST_PAUSE, untouched
HOST_PAUSE = 120.0  # seconds
INCOMING_TTL = 600.0  # seconds an account download waits to be stored before it is swept
EXTENSIONS = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp", "image/gif": ".gif",
              "video/mp4": ".mp4", "video/webm": ".webm", "video/quicktime": ".mov"}
GONE = (403, 404, 410)  # what a CDN answers for an expired link


@dataclass(slots=True)
class MediaOutcome:
    """What one call did: downloads by the status they ended in."""

    by_status: dict[str, int] = field(default_factory=dict)


class MediaStore:
    """Downloads due media into the content-addressed directory."""

    def __init__(self, http: HttpClient, config: MediaConfig, directory: Path, incoming: Path | None = None) -> None:
        self.http, self.config, self.directory = http, config, directory
        self.incoming = incoming.resolve() if incoming is not None else None  # the account's downloads
        self._failing: dict[str, int] = {}  # host -> files that failed in a row
        self._paused_until: dict[str, float] = {}  # host -> monotonic time its files wait until

    def _note(self, host: str, status: str) -> None:
        """Count a host's failures in a row; after HOST_FAILURES_IN_A_ROW its files wait HOST_PAUSE
        (a CDN that answers 502, or hangs to the timeout, costs three requests, not one a file)."""
        failed = self._failing.get(host, 0) + 1 if status == "failed" else 0
        self._failing[host] = failed
        if failed >= HOST_FAILURES_IN_A_ROW:
            self._paused_until[host] = time.monotonic() + HOST_PAUSE
            self._failing[host] = 0
            log.warning("media_host_paused", host=host, seconds=HOST_PAUSE)

    def wants(self, role: str) -> bool:
        return self.config.wants(role)

    async def capture(self, conn: Connection, channel_id: int | None = None, pages: int = 1) -> MediaOutcome:
        """Download what is due (of one channel, or all), oldest first, up to a page's worth of
        files for each of the ``pages`` just saved; never raises for a file's fault."""
        outcome = MediaOutcome()
        now = utc_now()
        limit = MAX_PER_PAGE * pages
        for download in await get_due_media(conn, now, utc_in(-self.config.url_ttl), channel_id, limit):
            host = urlsplit(download.url).hostname or ""
            if self._paused_until.get(host, 0.0) > time.monotonic():
                outcome.by_status["deferred"] = outcome.by_status.get("deferred", 0) + 1
                continue  # a CDN that fails every file: its files wait, untouched, while the posts go on
            status = await self._one(conn, download)
            self._note(host, status)
            outcome.by_status[status] = outcome.by_status.get(status, 0) + 1
        if self.incoming is not None:
            await asyncio.to_thread(_sweep, self.incoming, INCOMING_TTL)
        return outcome

    async def _one(self, conn: Connection, download: MediaDownload) -> str:
        if download.expired:
            await self._failed(conn, download, "expired", "the link expired before the file could be saved")
            return "expired"
        try:
            content, mime = await self._fetch(download.url)
        except ResponseTooLarge:
            await self._failed(conn, download, "skipped", f"larger than [media] max_size ({self.config.max_size} bytes)")
            return "skipped"
        except UnsafeURL as exc:
            await self._failed(conn, download, "failed", exc.reason, retry=False)
            return "failed"
        except _Gone as exc:
            await self._failed(conn, download, "failed", f"{exc.reason} (the link may have expired; a re-read "
                                                         "of its page brings a fresh one)", retry=True)
            return "failed"
        except FetchError as exc:
            await self._failed(conn, download, "failed", exc.reason, retry=True)
            return "failed"
        digest = hashlib.sha256(content).hexdigest()
        relative = Path(digest[:2]) / (digest + EXTENSIONS.get(mime, _extension(download.url)))
        await asyncio.to_thread(_write_once, self.directory, relative, content)
        width, height = image_size(content)
        async with transaction(conn):
            await save_media_file(conn, download, digest, len(content), mime or None, width, height,
                                  str(relative), utc_now())
        log.info("media_saved", url=_short(download.url), post_id=download.post_id, sha256=digest[:12],
                 size=len(content))
        return "ok"

    async def _fetch(self, url: str) -> tuple[bytes, str]:
        """The file at ``url``, following redirects only on the host the page named; a file the
        account downloaded (``file://`` under its directory, nowhere else) is taken from there."""
        if url.startswith("file://"):
            return await asyncio.to_thread(self._take_download, url)
        host = urlsplit(url).hostname
        for _ in range(REDIRECTS + 1):
            if urlsplit(url).scheme not in ("http", "https"):
                raise UnsafeURL(url, "only http(s) media links are fetched")
            # One attempt: a failing CDN must not hold the posts that wait behind the file; a
            # failed file is recorded and tried again in a later round while its link is fresh.
            response = await self.http.request("GET", url, follow_redirects=False, retry=False)
            if response.status in (301, 302, 303, 307, 308):
                target = urljoin(url, response.headers.get("location", ""))
                if urlsplit(target).hostname != host:
                    raise UnsafeURL(url, f"redirect to another host ({urlsplit(target).hostname}) refused")
                url = target
                continue
            if response.status in GONE:
                raise _Gone(url, f"HTTP {response.status}")
            if response.status != 200:
                raise FetchFailed(url, f"HTTP {response.status}")
            return response.content, response.media_type
        raise FetchError(url, f"more than {REDIRECTS} redirects")

    async def _failed(self, conn: Connection, download: MediaDownload, status: str, error: str,
                      retry: bool = False) -> None:
        attempt = download.attempts + 1
        retry_at = utc_in(backoff(RETRY_FIRST_WAIT, attempt, 86400.0)) if retry and attempt < MAX_ATTEMPTS else None
        async with transaction(conn):
            await save_media_failure(conn, download, status, error, retry_at)
        log.warning("media_not_saved", url=_short(download.url), post_id=download.post_id, status=status,
                    error=error, retry_at=retry_at)


    def _take_download(self, url: str) -> tuple[bytes, str]:
        path = Path(unquote(urlsplit(url).path)).resolve()
        if self.incoming is None or not path.is_relative_to(self.incoming):
            raise UnsafeURL(url, "a local file outside the account's download directory")
        try:
            content = path.read_bytes()
        except OSError as exc:
            raise FetchError(url, f"the downloaded file is gone ({exc.strerror}); downloaded again next read") from exc
        if len(content) > self.config.max_size:
            raise ResponseTooLarge(url, "larger than [media] max_size")
        path.unlink(missing_ok=True)
        return content, mimetypes.guess_type(path.name)[0] or ""


class _Gone(FetchError):
    """The CDN no longer has the file at this link (it may have expired)."""


def _write_once(directory: Path, relative: Path, content: bytes) -> None:
    """Write ``content`` to ``directory/relative`` through a temporary name, unless it is there."""
    target = directory / relative
    if target.exists() and target.stat().st_size == len(content):
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=".part-")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(content)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _sweep(incoming: Path, older_than: float) -> None:
    """Account downloads nobody took (their posts were unchanged): they are in the store already."""
    cutoff = time.time() - older_than
    for leftover in incoming.rglob("*"):
        if leftover.is_file() and leftover.stat().st_mtime < cutoff:
            leftover.unlink(missing_ok=True)


def remove_partial_files(directory: Path) -> int:
    """Temporary files a killed process left behind (never visible under a real name)."""
    removed = 0
    if directory.is_dir():
        for leftover in directory.glob("*/.part-*"):
            leftover.unlink(missing_ok=True)
            removed += 1
    return removed


def image_size(content: bytes) -> tuple[int | None, int | None]:
    """Width and height of a JPEG, PNG, GIF or WebP, read from its header; (None, None) otherwise."""
    try:
        if content[:8] == b"\x89PNG\r\n\x1a\n":
            width, height = struct.unpack(">II", content[16:24])
            return width, height
        if content[:6] in (b"GIF87a", b"GIF89a"):
            width, height = struct.unpack("<HH", content[6:10])
            return width, height
        if content[:4] == b"RIFF" and content[8:12] == b"WEBP" and content[12:16] == b"VP8X":
            width = 1 + int.from_bytes(content[24:27], "little")
            height = 1 + int.from_bytes(content[27:30], "little")
            return width, height
        if content[:2] == b"\xff\xd8":
            return _jpeg_size(content)
    except (struct.error, IndexError):
        pass
    return None, None


def _jpeg_size(content: bytes) -> tuple[int | None, int | None]:
    position = 2
    while position + 9 < len(content):
        if content[position] != 0xFF:
            return None, None
        marker = content[position + 1]
        length = struct.unpack(">H", content[position + 2:position + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
            height, width = struct.unpack(">HH", content[position + 5:position + 9])
            return width, height
        position += 2 + length
    return None, None


def _extension(url: str) -> str:
    suffix = Path(urlsplit(url).path).suffix.lower()
    return suffix if suffix in EXTENSIONS.values() else ""


def _short(url: str) -> str:
    """A CDN link without its token: long, and of no use in a log."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path[:60]}"
