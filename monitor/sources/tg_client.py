"""The account source: Telethon (MTProto) behind the same page interface as the web preview.

``AccountSource`` needs only three calls of a Telethon client (``get_entity``,
``iter_messages``, ``get_messages``), so tests stand a double in for the network.
Flood waits are converted here, at the boundary, into :class:`RateLimited`: short
ones are slept through (waking early on stop), long ones raised for the caller.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar
from urllib.parse import unquote, urlsplit

import structlog
from telethon import errors, functions
from telethon.tl import types

from monitor.config.settings import DEFAULT_REQUEST_TIMEOUT, INCOMING, TelegramConfig
from monitor.errors import AccountOffline, AccountUnavailable, ChannelUnavailable, FetchError, RateLimited, Stopped
from monitor.sources.page import ChannelPage, PostCheck
from monitor.sources.tg_map import map_channel, map_messages
from storage.models import ChannelInfo, MediaSource, Post, utc_now

log = structlog.get_logger(__name__)

PAGE = 100  # iter_messages fetches 100 messages a request
ALBUM_MAX = 10  # an album has at most ten members
CHANNEL_GONE = (errors.ChannelPrivateError, errors.ChannelInvalidError, errors.UsernameNotOccupiedError,
                errors.UsernameInvalidError, errors.ChannelPublicGroupNaError)
SESSION_GONE = (errors.AuthKeyUnregisteredError, errors.SessionRevokedError, errors.SessionExpiredError,
                errors.AuthKeyInvalidError, errors.UserDeactivatedError, errors.UserDeactivatedBanError)
# What connecting can raise when Telegram is unreachable or drops the connection (Telethon lets
# asyncio.IncompleteReadError, an EOFError, through when the server closes during the handshake).
CONNECT_FAILURES = (OSError, EOFError, TimeoutError)
CHANNEL_INFO_TTL = 6 * 3600.0  # seconds: title, subscribers and membership are read again after this
RECONNECT_FIRST_WAIT = 1.0  # seconds after a failed reconnect before the next; doubling ...
RECONNECT_MAX_WAIT = 60.0  # ... up to this
T = TypeVar("T")


class TelegramClientLike(Protocol):
    """The calls of Telethon's ``TelegramClient`` that legation makes: the one boundary to
    Telegram (tests stand a double in, with real ``telethon.tl.types``)."""

    def is_connected(self) -> bool: ...

    async def connect(self) -> None: ...

    async def get_entity(self, entity: str) -> Any: ...

    def iter_messages(self, entity: Any, limit: int, offset_id: int = 0) -> AsyncIterator[Any]: ...

    async def get_messages(self, entity: Any, ids: list[int]) -> Any: ...

    async def download_media(self, message: Any, file: str) -> Any: ...

    async def __call__(self, request: Any) -> Any: ...

    def add_event_handler(self, callback: Callable[[Any], Awaitable[None]], event: Any) -> None: ...

    async def catch_up(self) -> None: ...


class AccountSource:
    """Pages of posts and single-post checks through a logged-in Telegram client."""

    def __init__(self, client: TelegramClientLike, *, max_flood_sleep: float = 60.0, stop: asyncio.Event | None = None,
                 media: MediaPolicy | None = None, request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
                 join: frozenset[str] = frozenset()) -> None:
        self.client = client
        self.max_flood_sleep = max_flood_sleep
        self.request_timeout = request_timeout
        self.stop = stop or asyncio.Event()
        self.media = media
        self.join = join
        self._channels: dict[str, tuple[Any, ChannelInfo, float]] = {}  # username: entity, info, when read
        self.on_reconnect: list[Callable[[], Awaitable[None]]] = []  # e.g. the live listener's catch_up
        self._offline_until = 0.0  # monotonic time before which no reconnect is tried
        self._offline_wait = 0.0

    def connected(self) -> bool:
        is_connected = getattr(self.client, "is_connected", None)
        return is_connected is None or bool(is_connected())

    async def fetch_page(self, username: str, before: int | None = None,
                         known_signature: str | None = None) -> ChannelPage:
        """Up to 100 posts older than ``before`` (newest when None); albums never split. The
        account has no page to sign: it always reads the messages."""
        entity, info = await self._channel(username)
        asked = utc_now()
        messages = await self._call(f"history of {username}", lambda: self._history(entity, before))
        files = await self._download(entity, username, messages) if self.media and self.media.wants(username) else {}
        posts = [_with_files(post, files) for post in map_messages(messages, username)]
        return ChannelPage(
            channel=info,
            posts=tuple(posts),
            before=posts[0].post_id if len(messages) >= PAGE else None,
            fetched_at=asked,
        )

    async def fetch_posts(self, username: str, post_ids: list[int]) -> list[Post]:
        """Those posts (albums whole), e.g. ones the web preview cannot show."""
        entity = await self._entity(username)
        found = await self._call(f"posts of {username}", lambda: self.client.get_messages(entity, ids=post_ids))
        return map_messages([m for m in found if m is not None], username)

    async def check_post(self, username: str, post_id: int) -> PostCheck:
        """Deleted posts come back from ``get_messages`` as None or ``MessageEmpty``."""
        entity = await self._entity(username)
        found = await self._call(f"post {post_id} of {username}",
                                 lambda: self.client.get_messages(entity, ids=[post_id]))
        message = found[0] if found else None
        if message is None or isinstance(message, types.MessageEmpty):
            return PostCheck.GONE_IN_TELEGRAM
        return PostCheck.EXISTS

    async def _download(self, entity: Any, username: str, messages: list[Any]) -> dict[int, dict[str, str]]:
        """Save the media of ``messages`` no larger than the limit: post id -> ``{"file": path under
        media_dir}``, or ``{"file_error": why}`` when it could not be saved (the posts are saved either way)."""
        assert self.media is not None
        files = {}
        for message in messages:
            size = getattr(getattr(message.media, "document", None), "size", 0) or 0
            if message.media is None or isinstance(message.media, types.MessageMediaWebPage):
                continue
            if size > self.media.max_size:
                log.info("media_too_large", channel=username, post_id=message.id, size=size)
                continue
            try:
                saved = await self._save_media(entity, username, message)
            except AccountOffline:
                raise
            except FetchError as exc:
                log.warning("media_not_saved", channel=username, post_id=message.id, error=exc.reason)
                files[message.id] = {"file_error": exc.reason}
                continue
            if saved:
                files[message.id] = {"file": str(Path(saved).resolve())}
        return files

    async def _save_media(self, entity: Any, username: str, message: Any) -> str | None:
        """One message's media; an expired file reference is renewed by reading the message again, once."""
        assert self.media is not None
        target = self.media.directory / INCOMING / username / str(message.id)
        target.parent.mkdir(parents=True, exist_ok=True)
        what = f"media of {username}/{message.id}"
        try:
            return await self._call(what, functools.partial(self.client.download_media, message, file=str(target)))
        except FetchError as exc:
            if not isinstance(exc.__cause__, errors.FileReferenceExpiredError):
                raise
        log.info("file_reference_renewed", channel=username, post_id=message.id)
        [fresh] = await self._call(what, lambda: self.client.get_messages(entity, ids=[message.id]))
        if fresh is None or isinstance(fresh, types.MessageEmpty):
            raise FetchError(what, "the message is gone; its file cannot be downloaded")
        return await self._call(what, functools.partial(self.client.download_media, fresh, file=str(target)))

    async def _history(self, entity: Any, before: int | None) -> list[Any]:
        messages: list[Any] = []
        async for message in self.client.iter_messages(entity, limit=PAGE + ALBUM_MAX, offset_id=before or 0):
            if len(messages) >= PAGE and (message.grouped_id is None
                                          or message.grouped_id != messages[-1].grouped_id):
                break  # a page ends at 100 messages, but not inside an album
            messages.append(message)
        return messages

    async def _entity(self, username: str) -> Any:
        return (await self._channel(username))[0]

    async def _channel(self, username: str) -> tuple[Any, ChannelInfo]:
        """The channel and what the account knows of it (read again after CHANNEL_INFO_TTL).

        Refused before a message is read unless it is a broadcast channel or a public
        supergroup (``get_entity`` also finds users and bots: their chats are private). A
        channel the account has not joined gets no live updates: joined when configured
        (``join = true``), else said in the log and in ``status``.
        """
        now = asyncio.get_running_loop().time()
        known = self._channels.get(username)
        if known is not None and now - known[2] < CHANNEL_INFO_TTL:
            return known[0], known[1]
        try:
            entity = await self._call(f"channel {username}", lambda: self.client.get_entity(username))
        except ValueError as exc:
            raise ChannelUnavailable(username, f"the account cannot see it ({exc})") from exc
        if isinstance(entity, types.User):
            kind = "a bot" if entity.bot else "a user"
            raise ChannelUnavailable(username, f"@{username} is {kind}, not a channel: not archived")
        if not isinstance(entity, types.Channel) or not (entity.broadcast or (entity.megagroup and entity.username)):
            raise ChannelUnavailable(username, f"@{username} is not a channel or public supergroup: not archived")
        if entity.left and username.lower() in self.join:
            await self._call(f"join {username}", lambda: self.client(functions.channels.JoinChannelRequest(entity)))
            entity.left = False
            log.info("channel_joined", channel=username, why="join = true: live updates arrive for members only")
        elif entity.left:
            log.warning("live_updates_off", channel=username, reason="the account is not a member of the channel",
                        fix="set join = true in its [[channels]] table, or join it in Telegram; polls still "
                            "archive every post")
        full = await self._call(f"channel {username}",
                                lambda: self.client(functions.channels.GetFullChannelRequest(entity)))
        info = map_channel(entity, username, getattr(full, "full_chat", None))
        self._channels[username] = (entity, info, now)
        return entity, info

    async def _call(self, what: str, request: Callable[[], Awaitable[T]]) -> T:
        """One request, converted at the boundary: a short FloodWait is slept through once (waking on
        stop), a long one raised as RateLimited; every other Telegram error is the channel's."""
        for attempt in (1, 2):
            try:
                await self._ensure_connected(what)
                return await asyncio.wait_for(request(), self.request_timeout)
            except errors.FloodWaitError as exc:
                if exc.seconds > self.max_flood_sleep or attempt == 2:
                    raise RateLimited(what, exc.seconds) from exc
                log.warning("flood_wait", what=what, seconds=exc.seconds)
                try:
                    await asyncio.wait_for(self.stop.wait(), timeout=exc.seconds)
                except TimeoutError:
                    continue
                raise Stopped(what, "stop requested") from exc
            except CHANNEL_GONE as exc:
                raise ChannelUnavailable(what, f"Telegram says {type(exc).__name__}: {exc}") from exc
            except SESSION_GONE as exc:
                raise AccountUnavailable(what, f"the session is no longer valid ({type(exc).__name__}); "
                                               "run 'legation login' again") from exc
            except errors.RPCError as exc:
                raise FetchError(what, f"Telegram error {type(exc).__name__}: {exc}") from exc
            except TimeoutError as exc:
                raise FetchError(what, f"no answer from Telegram within {self.request_timeout:g} s") from exc
            except (OSError, EOFError) as exc:
                raise FetchError(what, f"Telegram connection failed: {exc or type(exc).__name__}") from exc
            except ValueError as exc:  # "Request was unsuccessful 5 time(s)": persistent server errors
                if "unsuccessful" not in str(exc):
                    raise
                raise FetchError(what, f"Telegram did not answer: {exc}") from exc
        raise AssertionError("unreachable")

    async def _ensure_connected(self, what: str) -> None:
        """Reconnect a client that Telethon gave up on after an outage (its reconnect window is
        about 35 s), with a back-off between attempts; after a reconnect, catch up."""
        if self.connected():
            return
        now = asyncio.get_running_loop().time()
        if now < self._offline_until:
            raise AccountOffline(what, f"Telegram is unreachable; next connection attempt in "
                                       f"{self._offline_until - now:.0f} s")
        log.info("account_reconnecting", what=what)
        try:
            await asyncio.wait_for(self.client.connect(), self.request_timeout)
        except CONNECT_FAILURES as exc:
            self._offline_wait = min(max(2 * self._offline_wait, RECONNECT_FIRST_WAIT), RECONNECT_MAX_WAIT)
            self._offline_until = now + self._offline_wait
            raise AccountOffline(what, f"cannot reach Telegram ({exc or type(exc).__name__}); "
                                       f"next attempt in {self._offline_wait:g} s") from exc
        self._offline_wait = 0.0
        log.info("account_reconnected")
        for callback in self.on_reconnect:
            await callback()


@dataclass(frozen=True, slots=True)
class MediaPolicy:
    """Which channels' media are saved, where, and up to which size."""

    directory: Path
    max_size: int
    channels: frozenset[str]

    def wants(self, username: str) -> bool:
        return username.lower() in self.channels


def _with_files(post: Post, files: dict[int, dict[str, str]]) -> Post:
    """Downloaded files become media sources (stored by hash like the web preview's); a file
    that could not be saved is noted on its media item."""
    if not files:
        return post
    media, sources = [], []
    for index, item in enumerate(post.media):
        found = files.get(item.get("post_id", post.post_id), {})
        if "file" in found:
            role = {"photo": "photo", "video": "video"}.get(str(item.get("type")), "document")
            sources.append(MediaSource(index, role, Path(found["file"]).as_uri(), origin="account"))
        media.append({**item, "file_error": found["file_error"]} if "file_error" in found else item)
    return dataclasses.replace(post, media=tuple(media), media_sources=tuple(sources))


def make_client(telegram: TelegramConfig, proxy_url: str | None) -> Any:
    """The one place a ``TelegramClient`` is made (no network yet).

    ``flood_sleep_threshold = 0``: Telethon would otherwise sleep FloodWaits of up to a
    minute silently and uninterruptibly; every wait reaches :meth:`AccountSource._call`.
    ``[telegram] server``/``test_servers`` point it at another data center, ``server_key``
    adds that server's RSA key.
    """
    from telethon import TelegramClient  # imported late: only account mode needs it
    from telethon.crypto import rsa as telethon_rsa

    assert telegram.api_id is not None and telegram.api_hash is not None
    client = TelegramClient(str(telegram.session), telegram.api_id, telegram.api_hash, proxy=telethon_proxy(proxy_url),
                            flood_sleep_threshold=0, request_retries=3, connection_retries=3, retry_delay=2,
                            timeout=int(telegram.request_timeout))
    if telegram.server_address is not None:
        client.session.set_dc(*telegram.server_address)
    if telegram.server_key is not None:
        import rsa

        pem = telegram.server_key.read_bytes()
        try:
            key = rsa.PublicKey.load_pkcs1(pem)
        except ValueError:
            key = rsa.PublicKey.load_pkcs1_openssl_pem(pem)
        telethon_rsa.add_key(key.save_pkcs1(), old=False)  # Telethon takes PKCS#1 PEM
    return client


async def connect(client: TelegramClientLike, telegram: TelegramConfig) -> None:
    """Connect within the request timeout; :class:`AccountOffline` when Telegram cannot be reached."""
    try:
        await asyncio.wait_for(client.connect(), telegram.request_timeout)
    except CONNECT_FAILURES as exc:
        where = telegram.server or ("Telegram's test servers" if telegram.test_servers else "Telegram")
        raise AccountOffline("connect", f"cannot reach {where} ({exc or type(exc).__name__}); "
                                        "check the network and [network] proxy") from exc


def create_session_file(path: Path) -> Path:
    """Telethon's session file (``<path>.session``), created with mode 0600 before Telethon opens it."""
    session = path if path.suffix == ".session" else path.with_name(path.name + ".session")
    session.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(session, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)
    os.chmod(session, 0o600)
    return session


def telethon_proxy(url: str | None) -> dict[str, Any] | None:
    """``[network] proxy`` in the form Telethon (python-socks) takes."""
    if not url:
        return None
    parts = urlsplit(url)
    scheme = {"socks5h": "socks5"}.get(parts.scheme, parts.scheme)
    return {"proxy_type": scheme, "addr": parts.hostname, "port": parts.port or (1080 if "socks" in scheme else 8080),
            "username": unquote(parts.username) if parts.username else None,
            "password": unquote(parts.password) if parts.password else None, "rdns": parts.scheme == "socks5h"}
