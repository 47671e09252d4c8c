"""The no-account source: ``https://t.me/s/<channel>`` pages fetched and parsed into post records."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import re
from urllib.parse import urlsplit

from monitor.errors import ChannelUnavailable, FetchFailed
from monitor.net.client import HttpClient
from monitor.sources.page import ChannelPage, PostCheck
from monitor.sources.tme_parse import ParsedPage, parse_count, parse_document, parse_duration, plain_text
from monitor.sources.tme_values import PageDecodeError, decode_page
from storage.models import ChannelInfo, utc_now

__all__ = ["ChannelPage", "PostCheck", "WebPreviewSource", "is_complete", "parse_channel_page", "parse_count",
           "page_signature", "parse_duration", "parse_embed", "plain_text"]


class WebPreviewSource:
    """Fetches and parses preview pages through the shared :class:`HttpClient`."""

    def __init__(self, http: HttpClient, web_url: str = "https://t.me") -> None:
        self.http = http
        self.web_url = web_url.rstrip("/")

    def page_url(self, username: str, before: int | None = None) -> str:
        url = f"{self.web_url}/s/{username}"
        return f"{url}?before={before}" if before is not None else url

    async def fetch_page(self, username: str, before: int | None = None,
                         known_signature: str | None = None) -> ChannelPage:
        """The newest page, or the page of posts older than ``before``; not parsed when its
        :func:`page_signature` is ``known_signature``."""
        url = self.page_url(username, before)
        asked = utc_now()
        response = await self.http.get(url)
        if response.status == 404 or not urlsplit(response.url).path.startswith("/s/"):
            raise ChannelUnavailable(
                username,
                "no public web preview (t.me sends it to the channel's info page: it does not "
                "exist, is private, or has its preview disabled)",
            )
        if response.status != 200:
            raise FetchFailed(url, f"HTTP {response.status}")
        # Only the newest page is ever compared with the last one: walks do not sign theirs.
        signature = page_signature(response.content) if before is None else None
        if signature is not None and signature == known_signature:  # the same bytes as a page parsed before, but for counters
            return ChannelPage(ChannelInfo(username), (), fetched_at=asked, signature=signature, unchanged=True)
        try:
            text = decode_page(response.content)  # by the document itself, never the header
        except PageDecodeError as exc:
            raise FetchFailed(url, str(exc)) from None
        if not is_complete(text):
            # lxml would repair it silently and the page's newest posts would be missing:
            # moving the cursor past them would leave a gap.
            raise FetchFailed(url, "truncated page (no closing </html>)")
        parsed = await asyncio.to_thread(parse_document, text, username)  # off the loop: signals stay prompt
        if parsed.unread:
            # The cursor must never move past posts the parser did not read.
            raise FetchFailed(url, f"the page could not be parsed whole ({parsed.unread} of its posts unread; "
                                   "nested too deeply?)")
        if not parsed.has_history:
            raise ChannelUnavailable(username, f"{url} is not a channel preview page")
        return dataclasses.replace(_channel_page(parsed), fetched_at=asked, signature=signature)

    async def check_post(self, username: str, post_id: int) -> PostCheck:
        """Ask the single-post page (``/<channel>/<id>?embed=1``) whether a post still exists."""
        response = await self.http.get(f"{self.web_url}/{username}/{post_id}?embed=1")
        try:
            text = decode_page(response.content)
        except PageDecodeError:
            return PostCheck.UNKNOWN
        if response.status != 200 or not is_complete(text):
            return PostCheck.UNKNOWN
        return parse_embed(text, post_id)


# What a page changes on every load without any post changing: view counts, reaction
# counts, the channel's counters (subscribers, photos, ...) and data-view, a per-request
# token. A page that differs in anything else is parsed; a counter that slips through here
# makes its page parsed too, only more often than needed. Each pattern starts with a literal
# (a fast search) and runs on the bytes as fetched: about 1 ms for a 140 KB page.
_COUNTERS = (
    (re.compile(rb' data-view="[^"]*"'), b""),
    (re.compile(rb'(_views">)[^<]+'), rb"\1"),
    (re.compile(rb'(counter_value">)[^<]+'), rb"\1"),
    (re.compile(rb'(<span class="tgme_reaction[^"]*">(?:<tg-emoji[^>]*></tg-emoji>|<i[^>]*>.*?</i>))[^<]+'), rb"\1"),
)


def page_signature(page: bytes) -> str:
    """The page's posts and channel, hashed without the counters that change on every load."""
    for pattern, replacement in _COUNTERS:
        page = pattern.sub(replacement, page)
    return hashlib.sha256(page).hexdigest()


def is_complete(html: str) -> bool:
    """t.me pages end with ``</html>`` (and a comment); a cut-off body does not."""
    return "</html>" in html[-4096:].lower()


def parse_channel_page(html: str | bytes, username: str) -> ChannelPage:
    """Parse a whole ``t.me/s/<channel>`` page; posts come back oldest first."""
    return _channel_page(parse_document(html, username))


def _channel_page(parsed: ParsedPage) -> ChannelPage:
    return ChannelPage(parsed.channel, parsed.posts, parsed.before, parsed.after, parsed.has_history,
                       parsed.parse_errors, parsed.failures)


def parse_embed(html: str | bytes, post_id: int) -> PostCheck:
    """A single-post page: the post, Telegram's "Post not found", or something else."""
    parsed = parse_document(html, "")
    if parsed.embed == "deleted":
        return PostCheck.DELETED
    if any(post.post_id == post_id for post in parsed.posts):
        return PostCheck.EXISTS
    return PostCheck.UNKNOWN
