"""What every source gives the round, whatever it reads (the web preview, the account):
pages of posts, single-post checks, and the protocol that names them."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

from storage.models import ChannelInfo, Post


@dataclass(frozen=True, slots=True)
class ChannelPage:
    """One page of a channel's web preview."""

    channel: ChannelInfo
    posts: tuple[Post, ...]
    before: int | None = None  # the "load older" cursor, if the page shows one
    after: int | None = None
    has_history: bool = True  # False: not a channel preview page at all
    parse_errors: int = 0  # posts that did not parse (left out): the page proves no deletion
    failures: tuple[tuple[int, str], ...] = ()  # (post id, reason) of those posts
    fetched_at: str | None = None  # when the source was asked: later news (a live deletion) wins
    # What the page says, hashed without what changes on every load (views, reactions,
    # subscriber counts, per-request tokens); None where a source has no such page.
    signature: str | None = None
    # The page's signature was the one the caller knew: not parsed, no posts, nothing changed
    # but counters.
    unchanged: bool = False


class PostCheck(enum.Enum):
    """What a single-post page says about a post."""

    EXISTS = "exists"
    DELETED = "deleted"  # the single-post page says "Post not found"
    GONE_IN_TELEGRAM = "deleted in Telegram"  # the account asked Telegram, which has no such message
    UNKNOWN = "unknown"

    @property
    def deleted(self) -> bool:
        return self in (PostCheck.DELETED, PostCheck.GONE_IN_TELEGRAM)

    @property
    def note(self) -> str:
        """Why the post is recorded as deleted, in the words of whoever said so."""
        if self is PostCheck.GONE_IN_TELEGRAM:
            return "Telegram returns no message with this id (account)"
        return "single-post page says: Post not found"


class PageSource(Protocol):
    """What the round needs of a source: pages of posts, and a single-post check."""

    async def fetch_page(self, username: str, before: int | None = None,
                         known_signature: str | None = None) -> ChannelPage:
        """A page of posts; where its signature equals ``known_signature``, an unparsed
        ``unchanged`` page instead (sources without signatures always parse)."""
        ...

    async def check_post(self, username: str, post_id: int) -> PostCheck: ...
