"""Domain records shared by sources and storage: frozen, slotted dataclasses."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import astuple, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

# A media item of this type marks a post that the web preview cannot show ("Please open
# Telegram to view this post"): its content is unknown, never empty.
UNVIEWABLE = "unviewable"

# What of a media item is content: the same whichever source (web preview or
# account) saw the post. Sizes, durations, file names and poll results are kept in
# the row but never make a new version.
CONTENT_MEDIA_KEYS = frozenset({"type", "post_id", "question", "options", "text", "latitude", "longitude"})


def utc_now() -> str:
    """The current time as ISO-8601 UTC text, the form of every stored timestamp."""
    return format_timestamp(datetime.now(UTC))


def utc_in(seconds: float) -> str:
    """The time ``seconds`` from now (negative: ago), as a stored timestamp."""
    return format_timestamp(datetime.now(UTC) + timedelta(seconds=seconds))


def age_of(stamp: str, now: datetime | None = None) -> float:
    """Seconds since a stored timestamp (or an ISO-8601 date)."""
    moment = datetime.fromisoformat(stamp)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return ((now or datetime.now(UTC)) - moment).total_seconds()


def format_timestamp(moment: datetime) -> str:
    """``2024-05-14T16:10:02Z``: seconds precision, always UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class Link:
    """One link of a post: normalised ``url``, the ``original`` text, where it came from.

    A link to a t.me post also names that post (``ref_channel``, ``ref_post_id``).
    """

    url: str
    original: str
    kind: str
    host: str | None = None
    ref_channel: str | None = None
    ref_post_id: int | None = None


@dataclass(frozen=True, slots=True)
class MediaSource:
    """Where the file of a post's media item can be downloaded now (a CDN link that expires).

    ``item`` is the item's index in ``Post.media``; ``role`` is ``photo``, ``thumbnail`` (of a
    video) or ``video``. Not content: links rotate, so they never make a version.
    """

    item: int
    role: str
    url: str
    origin: str = "web"  # "account": a file the account downloaded (file:// under [telegram] media_dir)


@dataclass(frozen=True, slots=True)
class Post:
    """One channel post as a source captured it."""

    post_id: int
    date: str | None = None
    text: str | None = None
    html: str | None = None
    views: int | None = None
    author: str | None = None
    edited: bool = False
    forwarded_from: str | None = None
    forwarded_from_url: str | None = None
    reply_to: int | None = None
    reply_to_url: str | None = None
    grouped_id: int | None = None
    media: Sequence[Mapping[str, Any]] = ()
    link_preview: Mapping[str, Any] | None = None
    service: bool = False
    links: Sequence[Link] = ()
    buttons: Sequence[Mapping[str, str]] = ()  # inline keyboard URL buttons: {"label", "url"}
    # Download links of the media files: not stored in posts, not compared (they rotate).
    media_sources: Sequence[MediaSource] = field(default=(), compare=False)

    @property
    def unviewable(self) -> bool:
        """The source could not show this post (see :data:`UNVIEWABLE`)."""
        return any(item.get("type") == UNVIEWABLE for item in self.media)

    def content_hash(self) -> str:
        """Hash of what counts as content, identical for the web preview and the account.

        Text, links (URL and kind, buttons' URLs included), media (types, album members,
        poll question and options, coordinates) and the preview's URL. Views, reactions,
        poll results, button labels (some carry counters) and the rendering (``html``,
        which only the web preview has) do not count.
        """
        content = {
            "text": self.text,
            "links": sorted({(link.url, link.kind) for link in self.links if link.kind != "preview"}),
            "media": [_stable(item) for item in self.media],
            "preview": (self.link_preview or {}).get("url"),
            "service": self.service,
        }
        return hashlib.sha256(_CONTENT_JSON.encode(content).encode("utf-8")).hexdigest()


# One encoder, made once: json.dumps with options builds a new one per call (a third of the hash's time).
_CONTENT_JSON = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _stable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _stable(v) for k, v in value.items() if k in CONTENT_MEDIA_KEYS}
    if isinstance(value, (list, tuple)):
        return [_stable(v) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class ChannelInfo:
    """What a source knows about a channel itself."""

    username: str
    telegram_id: int | None = None
    title: str | None = None
    description: str | None = None
    subscribers: int | None = None
    counters: Mapping[str, int] = field(default_factory=dict)
    account_member: bool | None = None  # account mode: has the account joined (live updates)?


@dataclass(frozen=True, slots=True)
class NewestPage:
    """The channel's newest page when a sync last parsed it: its signature (see
    ``monitor.sources.webpreview.page_signature``), its lowest post id, and when it was read."""

    signature: str
    lowest_id: int
    read_at: str


@dataclass(frozen=True, slots=True)
class ChannelState:
    """Resume state of one channel; every post in ``[tail_id, head_id]`` is archived."""

    channel_id: int
    username: str
    head_id: int | None = None
    tail_id: int | None = None
    backfill_done_at: str | None = None
    walk_target: int | None = None
    walk_cursor: int | None = None
    recheck_cursor: int | None = None
    recheck_until: int | None = None
    newest_page: NewestPage | None = None  # a sync does not parse it again while it is the same
    telegram_id: int | None = None  # the channel's numeric id as first archived: who the username named


@dataclass(frozen=True, slots=True)
class ChannelStatus:
    """One row of ``legation status``."""

    username: str
    title: str | None
    posts: int
    newest_id: int | None
    oldest_id: int | None
    backfill_done_at: str | None
    last_sync_at: str | None
    last_error: str | None
    last_error_at: str | None
    newest_date: str | None = None
    posts_last_day: int = 0
    unparsed_posts: int = 0  # posts a page held that did not parse (post_problems), retried
    unviewable_posts: int = 0  # posts the web preview cannot show ("Please open Telegram")
    account_member: bool | None = None  # account mode: False means no live updates (not joined)
    gap_ids: int = 0  # ids between the oldest and newest post that no source showed (storage.gaps)


@dataclass(frozen=True, slots=True)
class SaveResult:
    """What saving a batch of posts did."""

    new: int = 0
    changed: int = 0
    unchanged: int = 0
    restored: int = 0
    deleted: int = 0
    queued_pages: int = 0  # release pages their links put in the queue

    def __add__(self, other: SaveResult) -> SaveResult:
        return SaveResult(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))


@dataclass(frozen=True, slots=True)
class PageHit:
    """One release page found by full-text search, with the posts that link it."""

    url: str
    title: str | None
    date: str | None  # published, else last fetched
    snippet: str
    exact: bool
    linked_by: tuple[tuple[str, int], ...]  # (channel, post id), oldest first
    attachment_of: str | None = None  # a document attached to this page, found by its text


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One post found by full-text search."""

    username: str
    post_id: int
    date: str | None
    snippet: str
    exact: bool = True  # False: found through a stemmed form only


@dataclass(frozen=True, slots=True)
class PostVersion:
    """One captured version of a post."""

    version: int
    text: str | None
    edited: bool
    seen_at: str


@dataclass(frozen=True, slots=True)
class PostEvent:
    """A deletion or a restoration of a post."""

    kind: str
    at: str
    detail: str | None


PAGE_STATUSES = ("pending", "ok", "blocked", "gone", "failed")


@dataclass(frozen=True, slots=True)
class PageTask:
    """A queued page: what the fetcher needs to know."""

    url: str
    host: str
    status: str
    attempts: int
    version: int
    found_by: str | None = None  # 'translation': another language version of an archived release


@dataclass(frozen=True, slots=True)
class Attachment:
    """A document linked from a page body (PDF, DOC under /upload/)."""

    url: str
    title: str | None = None


def page_content_hash(title: str | None, published_at: str | None, text: str | None) -> str:
    """The hash of a page version's extracted content (``page_versions.content_hash``)."""
    blob = json.dumps([title, published_at, text], ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class PageCapture:
    """A page fetched and extracted."""

    final_url: str
    http_status: int
    content_type: str | None
    headers: Mapping[str, str]
    raw: bytes
    extractor: str
    title: str | None = None
    published_at: str | None = None
    lang: str | None = None
    text: str | None = None
    doc_number: str | None = None
    redirects: Sequence[str] = ()
    attachments: Sequence[Attachment] = ()
    fetched_with: str = "http"  # "browser": the document as headless Chromium rendered it past a wall

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.raw).hexdigest()

    def content_hash(self) -> str:
        """What makes a new version: the extracted content, not rotating tokens in the HTML."""
        return page_content_hash(self.title, self.published_at, self.text)


@dataclass(frozen=True, slots=True)
class SavedVersion:
    """A version just written, with the text of the one before it (None for a new post)."""

    post_id: int
    version: int
    date: str | None
    text: str | None
    previous_text: str | None


@dataclass(frozen=True, slots=True)
class PostText:
    """An archived post's newest text, for matching alert rules again."""

    channel_id: int
    username: str
    post_id: int
    version: int
    date: str | None
    text: str | None


@dataclass(frozen=True, slots=True)
class PageText:
    """An archived release page's newest title and text, for matching alert rules again."""

    url: str
    version: int
    title: str | None
    text: str | None


@dataclass(frozen=True, slots=True)
class PageVersion:
    """One archived version of a release page, as ``pages --history`` shows it."""

    version: int
    fetched_at: str
    title: str | None
    published_at: str | None
    text: str | None
    content_hash: str
    sha256: str


@dataclass(frozen=True, slots=True)
class PageRow:
    """One row of ``legation pages``."""

    url: str
    status: str
    fetched_at: str | None
    title: str | None
    error: str | None
    attempts: int
    version: int


@dataclass(frozen=True, slots=True)
class AlertRow:
    """One alert with what a message about it needs."""

    id: int
    rule: str
    kind: str
    channel: str | None
    post_id: int | None
    page_url: str | None
    version: int
    terms: tuple[str, ...]
    context: str | None
    created_at: str
    delivered_at: str | None
    attempts: int
    last_error: str | None
    post_date: str | None
    page_title: str | None
