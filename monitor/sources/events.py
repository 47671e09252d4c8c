"""Live events of a source, in the project's own terms (no Telegram types): what the daemon acts on."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PostChanged:
    """A post of a channel (by Telegram's channel id) was published or edited."""

    telegram_id: int
    post_id: int
    edited: bool = False  # an edit may concern a post far older than what a poll re-reads


@dataclass(frozen=True, slots=True)
class PostsDeleted:
    """Posts of a channel (by Telegram's channel id) were deleted."""

    telegram_id: int
    post_ids: tuple[int, ...]


LiveEvent = PostChanged | PostsDeleted
