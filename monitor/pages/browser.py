"""Pages behind a JavaScript wall, fetched again in headless Chromium (``[pages] browser``).

Chromium runs the wall's challenge as a visitor's browser would, but never touches the
network itself: every request the page makes (the document, its scripts, the challenge's
POST, redirects) is intercepted and sent through legation's own :class:`HttpClient`, so
the proxy, ``ca_bundle``, the address guard (checked on the address connected to),
``request_delay`` and the size cap apply to all of them, and the browser needs no CA of
its own. Anything not intercepted has nowhere to go: the browser's proxy is a closed
loopback port.

One browser process for the daemon (started on first use, started again if it dies), a
fresh temporary profile that Playwright deletes on close, one browser context per site
whose cookies (the wall's pass) live as long as the process, and at most one page at a
time per site.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import structlog

from monitor.config.settings import PagesConfig
from monitor.errors import FetchError, UnsafeURL
from monitor.net.client import HttpClient, Response
from monitor.pages.extract import challenge_marker

log = structlog.get_logger(__name__)

# Chromium's own background traffic off; a proxy that goes nowhere for anything not intercepted
# (its "<-loopback>" rule sends even loopback there).
CHROMIUM_ARGS = (
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
    "--disable-default-apps", "--disable-domain-reliability", "--disable-client-side-phishing-detection",
    "--dns-prefetch-disable", "--disable-quic", "--disable-features=NetworkPrediction,MediaRouter",
    "--disable-gpu", "--disable-dev-shm-usage", "--no-sandbox",
    "--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
    # WebRTC's ICE sends UDP (STUN, TURN) from Chromium itself, around any proxy and any route:
    # it may use the proxy only, which goes nowhere, and pages find no WebRTC at all (below).
    "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
    "--webrtc-ip-handling-policy=disable_non_proxied_udp",
)
# Run in every document before the page's own scripts: no peer connection can be made.
NO_WEBRTC = """(() => {
  for (const name of ["RTCPeerConnection", "webkitRTCPeerConnection", "RTCDataChannel", "RTCIceCandidate",
                      "RTCSessionDescription", "RTCRtpSender", "RTCRtpReceiver", "RTCDtlsTransport"]) {
    try { Object.defineProperty(window, name, {value: undefined, writable: false, configurable: false}); }
    catch (e) {}
  }
})();"""
SKIPPED_RESOURCES = frozenset({"image", "media", "font"})  # a challenge needs none of them
HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-encoding", "content-length",
                        "accept-encoding", "host", "upgrade", "te", "trailer", "proxy-authorization"})
POLL_INTERVAL = 0.5  # seconds between looks at the rendered document while the wall is up


class BrowserFailed(FetchError):
    """The browser could not get past the wall (timeout, byte cap, a crash)."""


@dataclass(slots=True)
class _PageBudget:
    """What one page's requests may still take, and the answer to its top document."""

    bytes_left: int
    document: Response | None = None


class BrowserFetcher:
    """Fetches a URL in headless Chromium until it no longer shows a wall; see the module."""

    def __init__(self, http: HttpClient, config: PagesConfig) -> None:
        assert config.browser_path is not None, "config loading resolves the Chromium path"
        self.http, self.config = http, config
        self._playwright: Any = None
        self._browser: Any = None
        self._contexts: dict[str, Any] = {}
        self._site_locks: dict[str, asyncio.Lock] = {}
        self._start_lock = asyncio.Lock()

    async def __aenter__(self) -> BrowserFetcher:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def fetch(self, url: str) -> Response:
        """The rendered document of ``url`` once no wall marker shows, as a :class:`Response`."""
        host = urlsplit(url).hostname or ""
        async with self._site_locks.setdefault(host, asyncio.Lock()):
            try:
                async with asyncio.timeout(self.config.browser_timeout):
                    return await self._render(url, host)
            except TimeoutError:
                raise BrowserFailed(url, f"the wall was still up after {self.config.browser_timeout:g} s "
                                         "in the browser") from None

    async def _render(self, url: str, host: str) -> Response:
        page = await self._new_page(url, host)
        budget = _PageBudget(self.config.browser_max_bytes)
        await page.route("**/*", lambda route: self._forward(route, budget, page))
        try:
            await page.goto(url, wait_until="load")
            while True:
                html = await _content(page)
                if html is not None and challenge_marker(html) is None:
                    break
                await asyncio.sleep(POLL_INTERVAL)
            if budget.document is None:
                raise BrowserFailed(url, "the browser never received the document")
            log.info("page_rendered_in_browser", url=url, final_url=page.url)
            return Response(url=page.url, status=budget.document.status,
                            headers={**budget.document.headers, "content-type": "text/html; charset=utf-8"},
                            content=html.encode("utf-8"), encoding="utf-8", redirects=budget.document.redirects)
        except BrowserFailed:
            raise
        except Exception as exc:  # Playwright's errors: the page's failure, said plainly
            if self._browser is not None and not self._browser.is_connected():
                await self._forget_browser()
            raise BrowserFailed(url, f"browser: {_said(exc)}") from exc
        finally:
            with contextlib.suppress(Exception):
                await page.close()

    async def _new_page(self, url: str, host: str) -> Any:
        """A page in the site's context. A browser that died since its last page may still count as
        connected (Playwright hears of it from its driver, later): when no page can be opened, the
        old process is forgotten and a fresh one started, once."""
        for attempt in range(2):
            try:
                return await (await self._context(host)).new_page()
            except Exception as exc:  # Playwright's errors: "Target page, context or browser has been closed"
                await self._forget_browser()
                if attempt:
                    raise BrowserFailed(url, f"browser: {_said(exc)}") from exc
        raise AssertionError("unreachable")

    async def _forward(self, route: Any, budget: _PageBudget, page: Any) -> None:
        """One request of the page, sent by legation's client; the answer handed to Chromium."""
        request = route.request
        if request.resource_type in SKIPPED_RESOURCES or urlsplit(request.url).scheme not in ("http", "https"):
            await route.abort("blockedbyclient")
            return
        try:
            headers = _forwarded_headers(await request.all_headers())
            response = await self.http.request(request.method, request.url, headers=headers,
                                               content=request.post_data_buffer, follow_redirects=False)
        except UnsafeURL as exc:
            log.warning("browser_request_refused", url=request.url, reason=exc.reason)
            await route.abort("blockedbyclient")
            return
        except FetchError as exc:
            log.info("browser_request_failed", url=request.url, reason=exc.reason)
            await route.abort("failed")
            return
        budget.bytes_left -= len(response.content)
        if budget.bytes_left < 0:
            log.warning("browser_page_too_large", url=request.url, cap=self.config.browser_max_bytes)
            await route.abort("blockedbyclient")
            return
        if request.is_navigation_request() and request.frame == page.main_frame:
            budget.document = response
        await route.fulfill(status=response.status, headers=_answer_headers(response), body=response.content)

    async def _context(self, host: str) -> Any:
        """The site's browser context: its cookies (a wall's pass) kept for the process's life."""
        browser = await self._ensure_browser()
        context = self._contexts.get(host)
        if context is None:
            context = await browser.new_context(user_agent=self._user_agent, java_script_enabled=True,
                                                service_workers="block")
            await context.add_init_script(NO_WEBRTC)
            self._contexts[host] = context
        return context

    async def _ensure_browser(self) -> Any:
        async with self._start_lock:
            if self._browser is not None and self._browser.is_connected():
                return self._browser
            await self._forget_browser()
            if self._playwright is None:
                from playwright.async_api import async_playwright

                self._playwright = await async_playwright().start()
            self._browser = await self._playwright.chromium.launch(
                executable_path=self.config.browser_path, headless=True, args=list(CHROMIUM_ARGS),
                handle_sigint=False, handle_sigterm=False, handle_sighup=False)
            version = self._browser.version
            self._user_agent = f"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) " \
                               f"Chrome/{version} Safari/537.36"
            log.info("browser_started", path=self.config.browser_path, version=version)
            return self._browser

    async def _forget_browser(self) -> None:
        """After a crash, or at close: nothing of the old process is kept. Playwright's driver stays
        until close: it deletes a dead browser's profile once the process is gone, after it has told
        us (stopped sooner, it would leave the profile behind)."""
        self._contexts.clear()
        browser, self._browser = self._browser, None
        if browser is not None:
            with contextlib.suppress(Exception):
                await browser.close()

    async def close(self) -> None:
        await self._forget_browser()
        playwright, self._playwright = self._playwright, None
        if playwright is not None:
            with contextlib.suppress(Exception):
                await playwright.stop()


def _said(exc: Exception) -> str:
    """The first line of a Playwright error (they run on with call logs), or its type."""
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


async def _content(page: Any) -> str | None:
    """The rendered document; None while a navigation (the wall reloading the page) is under way."""
    try:
        return str(await page.content())
    except Exception:  # noqa: BLE001 - "execution context was destroyed": the page is navigating
        return None


def _forwarded_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {name: value for name, value in headers.items() if name.lower() not in HOP_BY_HOP
            and not name.startswith(":")}


def _answer_headers(response: Response) -> dict[str, str]:
    """The answer's headers for Chromium: the body is already decoded, each cookie kept."""
    headers = {name: value for name, value in response.headers.items()
               if name.lower() not in HOP_BY_HOP and name.lower() != "set-cookie"}
    if response.set_cookies:
        headers["set-cookie"] = "\n".join(response.set_cookies)  # Chromium splits them at newlines
    return headers
