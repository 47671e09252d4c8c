"""The one HTTP client: proxy, extra CA bundle, per-host politeness delay, bounded retries."""

from __future__ import annotations

import asyncio
import functools
import random
import ssl
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import certifi
import httpcore
import httpx
import structlog

from monitor.config.settings import NetworkConfig
from monitor.errors import CertificateUntrusted, FetchFailed, ResponseTooLarge, Stopped
from monitor.net.body import ACCEPT_ENCODING, BodyTooLarge, BodyUndecodable, read_body
from monitor.net.guard import AddressGuard
from monitor.net.retry import backoff

log = structlog.get_logger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504, 520, 521, 522, 523, 524})
JITTER = 0.25  # back-off waits vary by up to +-25 %
IDEMPOTENT = frozenset({"GET", "HEAD"})
MAX_REDIRECTS = 10


@dataclass(frozen=True, slots=True)
class Response:
    """A fully read response: final URL, status, headers and body."""

    url: str
    status: int
    headers: Mapping[str, str]
    content: bytes
    encoding: str | None = None
    redirects: tuple[str, ...] = ()
    set_cookies: tuple[str, ...] = ()  # each Set-Cookie header (``headers`` joins them)

    @property
    def media_type(self) -> str:
        """The Content-Type without its parameters, lower case ("text/html")."""
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    @property
    def text(self) -> str:
        """The body decoded by its declared charset; UTF-8 where none, or one Python does not know."""
        try:
            return self.content.decode(self.encoding or "utf-8", errors="replace")
        except LookupError:  # "charset=x-bogus"
            return self.content.decode("utf-8", errors="replace")


@dataclass(slots=True)
class HttpStats:
    """Counters for status output and benchmarks."""

    requests: int = 0
    retries: int = 0


@functools.lru_cache(maxsize=8)
def make_ssl_context(ca_bundle: str | None = None) -> ssl.SSLContext:
    """System trust store plus certifi, plus ``ca_bundle`` (e.g. the Russian Trusted Root CA).

    One per trust configuration, shared by every client of the process: loading the stores
    costs a tenth of a second each time.
    """
    context = ssl.create_default_context()
    context.load_verify_locations(cafile=certifi.where())
    if ca_bundle:
        context.load_verify_locations(cafile=ca_bundle)
    return context


def proxy_policy(config: NetworkConfig) -> tuple[str | None, tuple[str, ...]]:
    """The one proxy policy of every client (t.me, release pages, media): ``[network] proxy`` if
    set, else the environment's (``HTTPS_PROXY``, ``HTTP_PROXY``, ``ALL_PROXY``, any case), with
    the hosts ``NO_PROXY`` lists; ``NO_PROXY=*`` means no proxy."""
    if config.proxy:
        return config.proxy, ()
    found = urllib.request.getproxies()
    proxy = found.get("https") or found.get("http") or found.get("all")
    bypass = tuple(dict.fromkeys(h.strip().lstrip("*").lstrip(".").lower()
                                 for h in found.get("no", "").split(",") if h.strip()))
    if not proxy or "" in bypass:  # "*" alone
        return None, ()
    return (proxy if "://" in proxy else f"http://{proxy}"), bypass


def _guarded_transport(verify: ssl.SSLContext, backend: httpcore.AsyncNetworkBackend) -> httpx.AsyncHTTPTransport:
    """httpx's transport whose connections go through ``backend`` (the address guard).

    httpx does not take a network backend; its pool (httpcore's, which does) is given one.
    A test drives a rebinding resolver through this path, so a change in httpx fails loudly.
    """
    transport = httpx.AsyncHTTPTransport(verify=verify)
    pool = getattr(transport, "_pool", None)
    if not isinstance(pool, httpcore.AsyncConnectionPool) or not hasattr(pool, "_network_backend"):
        raise RuntimeError("this httpx version's transport cannot take the address guard; pin httpx<0.29")
    pool._network_backend = backend
    return transport


def certificate_error(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    """The certificate verification failure behind a transport error, if that is what it is."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLCertVerificationError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds asked for by a ``Retry-After`` header (delta-seconds or HTTP-date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class HttpClient:
    """``get()`` with politeness, retries and a size cap; use as an async context manager."""

    def __init__(
        self,
        config: NetworkConfig,
        *,
        stop: asyncio.Event | None = None,
        headers: Mapping[str, str] | None = None,
        guard: AddressGuard | None = None,
    ) -> None:
        self.config = config
        self.stop = stop or asyncio.Event()
        self.stats = HttpStats()
        self._last_request: dict[str, float] = {}
        self._host_locks: dict[str, asyncio.Lock] = {}
        verify = make_ssl_context(str(config.ca_bundle) if config.ca_bundle else None)
        proxy, bypass = proxy_policy(config)
        backend = guard.backend() if guard is not None else None
        direct = _guarded_transport(verify, backend) if backend is not None else None
        # Hosts the environment's NO_PROXY names go direct, through the address guard as any direct request
        mounts: dict[str, httpx.AsyncBaseTransport | None] = {
            f"all://*{host}": direct or httpx.AsyncHTTPTransport(verify=verify) for host in bypass}
        self._client = httpx.AsyncClient(
            proxy=proxy,
            verify=verify,
            transport=direct if proxy is None else None,
            mounts=mounts or None,
            timeout=httpx.Timeout(config.timeout),
            headers={"User-Agent": config.user_agent, "Accept-Encoding": ACCEPT_ENCODING, **(headers or {})},
            follow_redirects=True,
            max_redirects=MAX_REDIRECTS,
            trust_env=False,  # the environment's proxy is read once, by proxy_policy, for every client alike
            event_hooks={"request": [self._check_request]} if guard else {},
        )
        self._guard = guard

    async def _check_request(self, request: httpx.Request) -> None:
        """Runs before every request, redirects included: the guard may refuse it."""
        if self._guard is not None:
            await self._guard.check_url(str(request.url))

    async def __aenter__(self) -> HttpClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def get(self, url: str) -> Response:
        """GET ``url``; 429, 5xx, timeouts and resets are retried, other answers returned."""
        return await self.request("GET", url)

    async def request(self, method: str, url: str, *, headers: Mapping[str, str] | None = None,
                      content: bytes | None = None, follow_redirects: bool = True,
                      retry: bool = True) -> Response:
        """One request with politeness, the size cap and the address guard; GET and HEAD are
        retried on 429, 5xx, timeouts and resets (unless ``retry`` is False: the caller
        records the failure and tries again later), other methods are sent once."""
        host = urlsplit(url).hostname or ""
        attempts = self.config.max_retries + 1 if method in IDEMPOTENT and retry else 1
        for attempt in range(1, attempts + 1):
            async with self._host_locks.setdefault(host, asyncio.Lock()):
                await self._wait_turn(host)
                try:
                    response = await self._send_unless_stopped(method, url, host, headers, content, follow_redirects)
                except (httpx.TimeoutException, httpx.TransportError, httpx.DecodingError) as exc:
                    untrusted = certificate_error(exc)
                    if untrusted is not None:  # not transient: no retry can help
                        raise CertificateUntrusted(url, host, untrusted.verify_message or str(untrusted)) from exc
                    reason = f"{type(exc).__name__}: {exc}".rstrip(": ")
                    wait = self._backoff(attempt)
                else:
                    if response.status not in RETRY_STATUSES or attempts == 1:
                        return response
                    reason = f"HTTP {response.status}"
                    asked = retry_after(response.headers.get("retry-after"))
                    wait = min(asked, self.config.max_retry_wait) if asked is not None else self._backoff(attempt)
            if attempt == attempts:
                break
            self.stats.retries += 1
            log.warning("request_retry", url=url, attempt=attempt, reason=reason, wait=round(wait, 2))
            await self.sleep(wait)
        raise FetchFailed(url, f"{reason} (after {attempts} attempt{'s' if attempts > 1 else ''})")

    async def _send_unless_stopped(self, method: str, url: str, host: str, headers: Mapping[str, str] | None,
                                   content: bytes | None, follow_redirects: bool) -> Response:
        """One request, abandoned (:class:`Stopped`) the moment a stop is requested: a daemon told to
        stop does not wait out a slow server's timeout."""
        if self.stop.is_set():
            raise Stopped(url, "stop requested")
        sending = asyncio.ensure_future(self._send_once(method, url, host, headers, content, follow_redirects))
        stopping = asyncio.ensure_future(self.stop.wait())
        try:
            await asyncio.wait({sending, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            if not sending.done():
                sending.cancel()
                await asyncio.gather(sending, return_exceptions=True)
        if sending.cancelled():
            raise Stopped(url, "stop requested; the request under way was abandoned")
        return sending.result()

    async def _send_once(self, method: str, url: str, host: str, headers: Mapping[str, str] | None,
                         content: bytes | None, follow_redirects: bool) -> Response:
        self.stats.requests += 1
        started = time.perf_counter()
        status: int | str = "no answer"
        try:
            async with asyncio.timeout(self.config.timeout), self._client.stream(
                    method, url, headers=headers, content=content, follow_redirects=follow_redirects) as response:
                status = response.status_code
                body = await self._read_capped(url, response)
                return Response(
                    url=str(response.url),
                    status=response.status_code,
                    headers=dict(response.headers),
                    content=body,
                    encoding=response.charset_encoding,
                    redirects=tuple(str(r.url) for r in response.history),
                    set_cookies=tuple(response.headers.get_list("set-cookie")),
                )
        except TimeoutError:  # the whole request, not one read: a trickle of bytes cannot hold it
            raise httpx.ReadTimeout(f"no complete answer within {self.config.timeout:g} s") from None
        except httpx.TooManyRedirects as exc:
            raise FetchFailed(url, f"more than {MAX_REDIRECTS} redirects") from exc
        except httpx.InvalidURL as exc:
            raise FetchFailed(url, f"invalid URL: {exc}") from exc
        finally:
            self._last_request[host] = time.monotonic()
            log.debug("http_request", method=method, url=url, status=status,
                      ms=round((time.perf_counter() - started) * 1000, 1))

    async def _read_capped(self, url: str, response: httpx.Response) -> bytes:
        limit = self.config.max_response_size
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise ResponseTooLarge(url, f"Content-Length {declared} exceeds {limit} bytes")
        try:
            return await read_body(response.aiter_raw(), response.headers.get("content-encoding", ""), limit)
        except BodyTooLarge:
            raise ResponseTooLarge(url, f"body exceeds {limit} bytes (decoded)") from None
        except BodyUndecodable as exc:
            raise httpx.DecodingError(str(exc), request=response.request) from None

    async def _wait_turn(self, host: str) -> None:
        last = self._last_request.get(host)
        if last is not None:
            remaining = self.config.request_delay - (time.monotonic() - last)
            if remaining > 0:
                await self.sleep(remaining)
        if self.stop.is_set():
            raise Stopped(host, "stop requested")

    def _backoff(self, attempt: int) -> float:
        wait = backoff(self.config.retry_backoff, attempt, self.config.max_retry_wait)
        return min(self.config.max_retry_wait, wait * random.uniform(1 - JITTER, 1 + JITTER))

    async def sleep(self, seconds: float) -> None:
        """Sleep, waking early (with :class:`Stopped`) when a stop is requested."""
        if seconds <= 0:
            return
        try:
            await asyncio.wait_for(self.stop.wait(), timeout=seconds)
        except TimeoutError:
            return
        raise Stopped("sleep", "stop requested")
