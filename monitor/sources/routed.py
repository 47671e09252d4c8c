"""Each channel's own source: the web preview, the account, or the account with the web as fallback."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import structlog

from monitor.errors import AccountOffline, ChannelUnavailable, FetchError, RateLimited
from monitor.sources.page import ChannelPage, PageSource, PostCheck

if TYPE_CHECKING:
    from monitor.sources.tg_client import AccountSource

log = structlog.get_logger(__name__)
T = TypeVar("T")


class RoutedSource:
    """Each channel's own source: ``web``, ``account``, or ``auto`` (account, else web).

    An ``auto`` channel that the account cannot serve right now (a long FloodWait,
    no login) is read from the web preview for the rest of the round.
    """

    def __init__(self, web: PageSource, account: AccountSource | None, sources: dict[str, str]) -> None:
        self.web, self.account, self.sources = web, account, {k.lower(): v for k, v in sources.items()}
        self._web_until: dict[str, float] = {}  # auto channels on the web preview until then (monotonic)

    def _pick(self, username: str) -> PageSource:
        wanted = self.sources.get(username.lower(), "web")
        if wanted == "web" or asyncio.get_running_loop().time() < self._web_until.get(username.lower(), 0.0):
            return self.web
        if self.account is None:
            if wanted == "account":
                raise ChannelUnavailable(username, "source = \"account\" but no Telegram account is logged in; "
                                                   "run 'legation login'")
            return self.web
        return self.account

    async def fetch_page(self, username: str, before: int | None = None,
                         known_signature: str | None = None) -> ChannelPage:
        page = await self._with_fallback(username,
                                         lambda source: source.fetch_page(username, before, known_signature))
        return await self._fill_unviewable(username, page)

    async def _fill_unviewable(self, username: str, page: ChannelPage) -> ChannelPage:
        """Posts the web preview cannot show, read through the account where an ``auto`` channel has one."""
        wanted = [post.post_id for post in page.posts if post.unviewable]
        if not wanted or self.account is None or self.sources.get(username.lower()) != "auto":
            return page
        try:
            found = {post.post_id: post for post in await self.account.fetch_posts(username, wanted)}
        except (RateLimited, FetchError, ChannelUnavailable) as exc:
            log.warning("unviewable_posts_not_read", channel=username, post_ids=wanted, error=str(exc))
            return page
        return dataclasses.replace(page, posts=tuple(found.get(post.post_id, post) for post in page.posts))

    async def check_post(self, username: str, post_id: int) -> PostCheck:
        return await self._with_fallback(username, lambda source: source.check_post(username, post_id))

    async def _with_fallback(self, username: str, call: Callable[[PageSource], Awaitable[T]]) -> T:
        source = self._pick(username)
        try:
            return await call(source)
        except (RateLimited, AccountOffline) as exc:
            if source is self.web or self.sources.get(username.lower()) != "auto":
                raise
            if isinstance(exc, RateLimited):  # the account is asked again once the wait is over
                log.warning("account_rate_limited_using_web", channel=username, seconds=exc.seconds)
                self._web_until[username.lower()] = asyncio.get_running_loop().time() + exc.seconds
            else:
                log.warning("account_offline_using_web", channel=username, error=exc.reason)
            return await call(self.web)
