"""The page queue: linked URLs on followed domains, fetched politely, extracted, versioned."""

from __future__ import annotations

import hashlib
import urllib.robotparser
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import structlog

from monitor.alerts.engine import AlertHooks
from monitor.config.settings import PagesConfig
from monitor.errors import CertificateUntrusted, FetchError, ResponseTooLarge, Stopped, UnsafeURL
from monitor.net.client import HttpClient, Response
from monitor.net.retry import CLOCK_SLACK, backoff
from monitor.pages.browser import BrowserFetcher
from monitor.pages.extract import Extracted, challenge_marker
from monitor.pages.releases import ReleasePlan, plan_release
from monitor.pages.worker import ExtractionFailed, ExtractionWorker
from storage.db import Connection, transaction
from storage.errors import StorageError
from storage.models import PageCapture, PageTask, age_of, utc_in, utc_now
from storage.pages import (
    count_pages,
    get_due_attachments,
    get_due_pages,
    get_page_text,
    get_robots,
    requeue_stale,
    save_attachment,
    save_extraction_done,
    save_page_capture,
    save_page_problem,
    save_release,
    save_robots,
    start_extraction,
)

log = structlog.get_logger(__name__)

HTML_TYPES = ("text/html", "application/xhtml+xml")
ATTACHMENT_TYPES = ("application/pdf", "application/msword", "application/vnd.openxmlformats",
                    "application/rtf", "application/vnd.oasis", "application/octet-stream",
                    "application/vnd.ms-excel")
BLOCKING_STATUSES = frozenset({401, 403, 429})
GONE_STATUSES = frozenset({404, 410})
# A page carrying a challenge script is only a wall if it has hardly any text.
MIN_REAL_TEXT = 200
MAX_ATTACHMENTS_PER_ROUND = 20
ROBOTS_UNAVAILABLE = "robots_unavailable"
HOST_UNTRUSTED = "host_untrusted"
MAX_EXTRACTIONS = 2  # starts of a page's extraction before it is failed for good
TRANSLATION = "translation"  # pages.found_by of a language version found from an archived page
NO_TEXT = "no article text found (neither the site's layout nor the generic extractor found a body)"


@dataclass(slots=True)
class PagesOutcome:
    """What one pass over the queue did, and what is left."""

    queued: int = 0  # archived links of newly followed domains queued before the round (saves queue the rest)
    fetched: dict[str, int] = field(default_factory=dict)
    remaining: dict[str, int] = field(default_factory=dict)

    def count(self, status: str) -> None:
        self.fetched[status] = self.fetched.get(status, 0) + 1


async def run_pages(conn: Connection, http: HttpClient, config: PagesConfig,
                    alerts: AlertHooks | None = None, browser: BrowserFetcher | None = None) -> PagesOutcome:
    """Queue again the pages due for a refetch, then fetch up to ``max_per_round`` due pages.

    Pages join the queue as the posts linking to them are saved, for the domains the process
    followed when it started (``monitor.daemon.service.follow_configured_domains``).
    """
    await requeue_due(conn, config)
    outcome = PagesOutcome()
    # Hosts whose robots.txt failed, or whose certificate is not trusted, this round: their pages wait.
    unreachable: set[str] = set()
    tried: set[str] = set()
    async with ExtractionWorker() as worker:
        latest = utc_in(config.max_retry_wait + CLOCK_SLACK)  # no page waits longer than that
        # Pages archived this round may queue their release's other languages: taken in the same
        # round while it has room, so that one run archives a release whole.
        while len(tried) < config.max_per_round:
            due = [task for task in await get_due_pages(conn, utc_now(), config.max_per_round + len(tried), latest)
                   if task.url not in tried and task.host not in unreachable][:config.max_per_round - len(tried)]
            if not due:
                break
            for task in due:
                tried.add(task.url)
                if task.host in unreachable:
                    continue
                status = await _one_page(conn, http, task, config, alerts, browser, worker)
                if status in (ROBOTS_UNAVAILABLE, HOST_UNTRUSTED):
                    unreachable.add(task.host)
                    status = "failed"
                outcome.count(status)
        if config.attachments:
            await fetch_attachments(conn, http, worker, alerts)
    outcome.remaining = await count_pages(conn)
    return outcome


async def _one_page(conn: Connection, http: HttpClient, task: PageTask, config: PagesConfig,
                    alerts: AlertHooks | None, browser: BrowserFetcher | None, worker: ExtractionWorker) -> str:
    try:
        return await fetch_release_page(conn, http, task, config, alerts, browser, worker)
    except (Stopped, StorageError):
        raise  # the daemon stopping, or the archive failing: not this page's problem
    except Exception as exc:  # anything else is this page's failure, never the queue's
        log.exception("page_processing_failed", url=task.url)
        return await _problem(conn, task, config, "failed",
                              f"could not process the page: {type(exc).__name__}: {exc}", retry=True)


async def requeue_due(conn: Connection, config: PagesConfig) -> None:
    """Queue again the archived pages last fetched ``refetch_after`` ago, if that is set."""
    if config.refetch_after is not None:
        async with transaction(conn):
            await requeue_stale(conn, utc_in(-config.refetch_after))


async def fetch_release_page(conn: Connection, http: HttpClient, task: PageTask, config: PagesConfig,
                             alerts: AlertHooks | None, browser: BrowserFetcher | None,
                             worker: ExtractionWorker) -> str:
    """Fetch one queued page and record the outcome; returns the page's new status. A page that
    answers with a wall is fetched again through ``browser`` when there is one."""
    try:
        allowed = await robots_allow(conn, http, task.url, config)
    except CertificateUntrusted as exc:
        return await _untrusted(conn, task, config, exc)
    except FetchError as exc:
        await _problem(conn, task, config, "failed", f"robots.txt unavailable: {exc}", retry=True)
        return ROBOTS_UNAVAILABLE
    if not allowed:
        return await _problem(conn, task, config, "failed", "disallowed by robots.txt", retry=False)
    try:
        response = await http.get(task.url)
    except CertificateUntrusted as exc:
        return await _untrusted(conn, task, config, exc)
    except (UnsafeURL, ResponseTooLarge) as exc:
        return await _problem(conn, task, config, "failed", str(exc), retry=False)
    except FetchError as exc:
        return await _problem(conn, task, config, "failed", str(exc), retry=True)
    return await _archive_answer(conn, task, config, alerts, response, browser, worker)


async def _archive_answer(conn: Connection, task: PageTask, config: PagesConfig, alerts: AlertHooks | None,
                          response: Response, browser: BrowserFetcher | None, worker: ExtractionWorker,
                          fetched_with: str = "http") -> str:
    """What the answer to a page's request makes of it: archived, or gone, blocked, failed."""
    if response.status in GONE_STATUSES:  # of a language version: the release is not translated into it
        reason = f"not translated (HTTP {response.status})" if task.found_by == TRANSLATION else f"HTTP {response.status}"
        return await _problem(conn, task, config, "gone", reason, False, response.status)
    if response.status in BLOCKING_STATUSES:
        return await _blocked(conn, task, config, alerts, browser, worker, f"HTTP {response.status}", response.status)
    if response.status != 200:
        return await _problem(conn, task, config, "failed", f"HTTP {response.status}", True, response.status)
    content_type = response.media_type
    if content_type and content_type not in HTML_TYPES:
        return await _problem(conn, task, config, "failed", f"not an HTML page ({content_type})", False, 200)
    html = response.text
    async with transaction(conn):  # counted before it runs: a process killed during it leaves the count
        starts = await start_extraction(conn, task.url)
    if starts > MAX_EXTRACTIONS:
        return await _extraction_failed(conn, task, config, f"extraction did not finish {MAX_EXTRACTIONS} times "
                                                            "(the process was stopped or killed during it)")
    try:  # in a process of its own: bounded in memory and time, killed when the daemon stops
        extractor, extracted = await worker.extract(
            config.extractor_for(urlsplit(response.url).hostname or task.host), html, response.url)
    except ExtractionFailed as exc:
        if not exc.overran:  # the extractor's error on this page: retried on the ladder, as any failure
            async with transaction(conn):
                await save_extraction_done(conn, task.url)
            return await _problem(conn, task, config, "failed", str(exc), retry=True)
        return await _extraction_failed(conn, task, config, str(exc), final=starts >= MAX_EXTRACTIONS)
    async with transaction(conn):
        await save_extraction_done(conn, task.url)
    wall = challenge_marker(html)
    if wall and len(extracted.text or "") < MIN_REAL_TEXT:
        return await _blocked(conn, task, config, alerts, browser, worker, f"anti-bot page: {wall}", 200)
    if not extracted.text:  # never an empty "ok": the layout may be new, or the page a stub
        return await _problem(conn, task, config, "failed", NO_TEXT, True, 200)
    capture = _capture(response, content_type, extractor, extracted, fetched_with)
    release = plan_release(task.url, extracted.lang, extracted.translations, config,
                           find_more=task.found_by != TRANSLATION)
    return await _save_capture(conn, task, capture, alerts, release)


async def _blocked(conn: Connection, task: PageTask, config: PagesConfig, alerts: AlertHooks | None,
                   browser: BrowserFetcher | None, worker: ExtractionWorker, reason: str, http_status: int) -> str:
    """A wall: through the browser when there is one (once), else blocked and retried later."""
    if browser is None:
        return await _problem(conn, task, config, "blocked", reason, True, http_status)
    log.info("page_walled_trying_browser", url=task.url, reason=reason)
    try:
        rendered = await browser.fetch(task.url)
    except FetchError as exc:
        return await _problem(conn, task, config, "blocked", f"{reason}; {exc.reason}", True, http_status)
    return await _archive_answer(conn, task, config, alerts, rendered, None, worker, fetched_with="browser")


async def robots_allow(conn: Connection, http: HttpClient, url: str, config: PagesConfig) -> bool:
    """What the host's robots.txt says of ``url``, fetched at most once per ``robots_ttl``.

    A missing robots.txt (4xx) allows everything; one that cannot be read (5xx,
    network) raises, so the page waits for a later round (RFC 9309).
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    cached = await get_robots(conn, host)
    if cached is None or age_of(cached[0]) > config.robots_ttl:
        response = await http.get(f"{parts.scheme}://{parts.netloc}/robots.txt")
        if response.status >= 500:
            raise FetchError(url, f"robots.txt answered HTTP {response.status}")
        body = response.text if response.status == 200 else None
        async with transaction(conn):
            await save_robots(conn, host, response.status, body, utc_now())
        cached = (utc_now(), response.status, body)
    if cached[2] is None:
        return True
    parser = urllib.robotparser.RobotFileParser()
    parser.parse(cached[2].splitlines())
    return parser.can_fetch(http.config.user_agent, url)


async def fetch_attachments(conn: Connection, http: HttpClient, worker: ExtractionWorker,
                            alerts: AlertHooks | None = None) -> None:
    """Fetch documents linked from archived page bodies (PDF, DOC under /upload/), and read their
    text in the extraction worker so that search and alert rules reach it."""
    for page_url, url in await get_due_attachments(conn, MAX_ATTACHMENTS_PER_ROUND):
        fields: dict[str, object]
        try:
            response = await http.get(url)
        except FetchError as exc:
            fields = {"status": "failed", "error": str(exc)}
        else:
            content_type = response.media_type
            if response.status in GONE_STATUSES:
                fields = {"status": "gone", "error": f"HTTP {response.status}"}
            elif response.status != 200 or not content_type.startswith(ATTACHMENT_TYPES):
                fields = {"status": "failed", "error": f"HTTP {response.status} {content_type}".strip()}
            else:
                fields = {"status": "ok", "content_type": content_type, "raw": response.content,
                          "sha256": hashlib.sha256(response.content).hexdigest(),
                          "text": await _document_text(worker, response.content, content_type, url)}
        now = utc_now()
        async with transaction(conn):
            await save_attachment(conn, page_url, url, now, **fields)  # type: ignore[arg-type]
            if alerts is not None and fields.get("text"):
                await alerts.on_attachment(conn, page_url, url, str(fields["text"]), now)


async def _document_text(worker: ExtractionWorker, content: bytes, content_type: str, url: str) -> str | None:
    """The document's text; None where it cannot be read (the file is kept all the same)."""
    try:
        return await worker.document_text(content, content_type, url)
    except ExtractionFailed as exc:
        log.warning("attachment_text_not_read", url=url, error=str(exc))
        return None


def _capture(response: Response, content_type: str, extractor: str, extracted: Extracted,
             fetched_with: str) -> PageCapture:
    return PageCapture(fetched_with=fetched_with,
        final_url=response.url, http_status=response.status, content_type=content_type or None,
        headers=response.headers, raw=response.content, extractor=extractor, title=extracted.title,
        published_at=extracted.published_at, lang=extracted.lang, text=extracted.text,
        doc_number=extracted.doc_number, redirects=response.redirects, attachments=extracted.attachments,
    )


async def _save_capture(conn: Connection, task: PageTask, capture: PageCapture,
                        alerts: AlertHooks | None, release: ReleasePlan | None) -> str:
    now = utc_now()
    async with transaction(conn):
        previous = await get_page_text(conn, task.url)
        changed = await save_page_capture(conn, task, capture, now)
        if release is not None:  # before the alert: one alert per release, whichever language matches first
            queued = await save_release(conn, task.url, release.site, release.number, release.lang,
                                        release.versions, now)
            if queued:
                log.info("release_versions_queued", url=task.url, release=f"{release.site} {release.number}",
                         queued=queued)
        if changed and alerts is not None:
            await alerts.on_page(conn, task.url, task.version + 1, capture.title, capture.text, previous, now)
    log.info("page_archived", url=task.url, title=capture.title, new_version=changed)
    return "ok"


async def _untrusted(conn: Connection, task: PageTask, config: PagesConfig,
                     exc: CertificateUntrusted) -> str:
    """A certificate error is the host's until the config changes: no back-off ladder, one
    attempt per host a round, and a retry only after ``max_retry_wait`` (or on ``refetch``)."""
    await _problem(conn, task, config, "failed", exc.reason, retry=True, wait=config.max_retry_wait)
    return HOST_UNTRUSTED


async def _extraction_failed(conn: Connection, task: PageTask, config: PagesConfig, reason: str,
                             final: bool = True) -> str:
    """Extraction overran its bounds (or its process was killed): tried again once, then failed
    for good with the reason, never fetched again in a loop."""
    status = await _problem(conn, task, config, "failed", reason, retry=not final, wait=None if final else 0.0)
    if final:
        async with transaction(conn):
            await save_extraction_done(conn, task.url)
    return status


async def _problem(
    conn: Connection, task: PageTask, config: PagesConfig, status: str, error: str,
    retry: bool, http_status: int | None = None, wait: float | None = None,
) -> str:
    """Record why the page was not archived; a retry after ``wait``, or on the back-off ladder."""
    attempt = task.attempts + 1
    retry_at = None
    if wait is not None:
        retry_at = utc_in(wait)
    elif retry and attempt < config.max_attempts:
        retry_at = utc_in(backoff(config.retry_backoff, attempt, config.max_retry_wait))
    async with transaction(conn):
        await save_page_problem(conn, task.url, status, error, utc_now(), http_status=http_status,
                                retry_at=retry_at)
    log.warning("page_not_archived", url=task.url, status=status, error=error, attempt=attempt, retry_at=retry_at)
    return status

