"""Account mode: real telethon.tl.types objects through a stand-in for Telethon's client."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
import sys
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from helpers import read_only, rows
from telethon import errors, functions, utils
from telethon.tl import types
from tmeserver import message_wraps

from monitor.daemon.service import archive_channels
from monitor.sources.tg_client import create_session_file, telethon_proxy
from monitor.sources.tg_map import map_messages
from monitor.sources.webpreview import parse_channel_page
from storage.db import open_archive, transaction
from storage.deletions import save_deletion
from storage.models import utc_now

START = datetime(2024, 5, 1, tzinfo=UTC)


class FakeTelethon:
    """Stands in for ``TelegramClient`` where the network would be: three calls, real types."""

    def __init__(self) -> None:
        self.entities: dict[str, types.Channel | types.User] = {}
        self.messages: dict[str, dict[int, types.Message]] = {}
        self.floods: list[int] = []  # FloodWait seconds to raise, one per request
        self.fail_history_after: int | None = None  # a connection drop after N history calls
        self.calls: list[str] = []
        self.connected = True  # False: Telethon gave up reconnecting after an outage
        self.hang = False  # True: requests never answer (a dead connection Telethon has not noticed)
        self.errors: list[BaseException] = []  # raised by the next requests, one each
        self.after_history: Callable[[], Awaitable[None]] | None = None  # runs once a history page is read
        self.network_down = False  # True: connecting fails, as with no route to Telegram
        self.handlers: list[Callable[[object], Awaitable[None]]] = []
        self.others: list[types.Channel] = []  # channels an answer names (forward sources) but not configured
        self._mb_entity_cache: dict[int, object] = {}  # what Message._finish_init reads; empty here
        self._self_id = None
        self.subscribers = 1234
        self.joined: list[str] = []
        self.members = True  # False: the account has not joined the channels (get_entity says left)

    def _answer(self, found: list[types.Message | None]) -> list[types.Message | None]:
        """As Telethon does with an answer: messages learn the chats it names (forward sources)."""
        chats = [e for e in [*self.entities.values(), *self.others] if isinstance(e, types.Channel)]
        known = {utils.get_peer_id(types.PeerChannel(c.id)): c for c in chats}
        for item in found:
            if item is not None:
                item._finish_init(self, known, None)
        return found

    def is_connected(self) -> bool:
        return self.connected

    async def connect(self) -> None:
        self.calls.append("connect")
        if self.network_down:
            raise ConnectionError("Connection to Telegram failed 3 time(s)")  # what Telethon raises
        self.connected = True

    def outage(self) -> None:
        """The network goes away, and Telethon's reconnect window passes: it gives up."""
        self.network_down, self.connected = True, False

    def add_event_handler(self, handler: Callable[[object], Awaitable[None]], event: object) -> None:
        self.handlers.append(handler)

    async def catch_up(self) -> None:
        self.calls.append("catch_up")
        await self._trouble()

    async def push(self, update: object) -> None:
        """Telegram pushes an update (only while connected)."""
        assert self.connected
        for handler in self.handlers:
            await handler(update)

    async def _trouble(self) -> None:
        if not self.connected:
            raise ConnectionError("Cannot send requests while disconnected")
        if self.hang:
            await asyncio.Event().wait()
        if self.errors:
            raise self.errors.pop(0)

    def channel(self, username: str, channel_id: int = 1115334455) -> dict[int, types.Message]:
        self.entities[username.lower()] = types.Channel(id=channel_id, title=f"{username} title", broadcast=True,
                                                        photo=types.ChatPhotoEmpty(), date=START, username=username)
        return self.messages.setdefault(username.lower(), {})

    def _flood(self) -> None:
        if self.floods:
            raise errors.FloodWaitError(request=None, capture=self.floods.pop(0))

    async def __call__(self, request: object) -> object:
        """Raw requests: the full channel (about, subscribers) and joining."""
        name = type(request).__name__
        self.calls.append(f"{name} {request.channel.username}")
        self._flood()
        await self._trouble()
        if isinstance(request, functions.channels.GetFullChannelRequest):
            channel = request.channel
            full = types.ChannelFull(id=channel.id, about=f"About {channel.username}", read_inbox_max_id=0,
                                     read_outbox_max_id=0, unread_count=0, chat_photo=types.PhotoEmpty(0),
                                     notify_settings=types.PeerNotifySettings(), bot_info=[], pts=1,
                                     participants_count=self.subscribers)
            return types.messages.ChatFull(full_chat=full, chats=[channel], users=[])
        if isinstance(request, functions.channels.JoinChannelRequest):
            self.joined.append(request.channel.username)
            return types.Updates(updates=[], users=[], chats=[], date=START, seq=0)
        raise AssertionError(f"unexpected request {name}")

    async def get_entity(self, username: str) -> types.Channel | types.User:
        self.calls.append(f"get_entity {username}")
        self._flood()
        await self._trouble()
        if username.lower() not in self.entities:
            raise ValueError(f'No user has "{username}" as username')
        entity = self.entities[username.lower()]  # users and bots too, as Telethon's does
        if isinstance(entity, types.Channel):
            entity.left = not self.members and entity.username not in self.joined
        return entity

    async def iter_messages(self, entity: types.Channel, limit: int, offset_id: int = 0):
        self.calls.append(f"iter_messages {entity.username} offset_id={offset_id}")
        self._flood()
        await self._trouble()
        if self.fail_history_after is not None:
            if self.fail_history_after == 0:
                raise ConnectionError("connection reset by peer")
            self.fail_history_after -= 1
        ids = sorted((i for i in self.messages[entity.username.lower()] if not offset_id or i < offset_id),
                     reverse=True)[:limit]
        page = self._answer([self.messages[entity.username.lower()][post_id] for post_id in ids])
        if self.after_history is not None:
            hook, self.after_history = self.after_history, None
            await hook()
        for item in page:
            yield item

    async def get_messages(self, entity: types.Channel, ids: list[int]) -> list[types.Message | None]:
        self.calls.append(f"get_messages {entity.username} {ids}")
        self._flood()
        await self._trouble()
        return self._answer([self.messages[entity.username.lower()].get(i) for i in ids])


def message(post_id: int, text: str = "", **kwargs) -> types.Message:
    kwargs.setdefault("date", START + timedelta(hours=post_id))
    return types.Message(id=post_id, peer_id=types.PeerChannel(1115334455), message=text, post=True, **kwargs)


def photo() -> types.MessageMediaPhoto:
    return types.MessageMediaPhoto(photo=types.Photo(id=1, access_hash=1, file_reference=b"", date=START, sizes=[],
                                                     dc_id=2))


@pytest.fixture
def telethon() -> FakeTelethon:
    return FakeTelethon()


def account_config(make_config, name: str, source: str = "account"):
    """The loopback config, with the channel read through the account (or ``source``)."""
    config = make_config(name)
    return replace(config, channels=tuple(replace(c, source=source) for c in config.channels))


async def test_backfill_through_the_account_in_pages_of_100_with_albums_whole(telethon, make_config):
    messages = telethon.channel("MFARussia")
    for post_id in range(1, 251):
        messages[post_id] = message(post_id, f"Заявление {post_id} https://mid.ru/ru/{post_id}/")
    for post_id in (149, 150, 151):  # an album across the boundary of the second page (ids 151..51)
        messages[post_id] = message(post_id, "Фото" if post_id == 150 else "", grouped_id=777, media=photo())
    config = account_config(make_config, "MFARussia")

    [outcome] = (await archive_channels(config, ["MFARussia"], mode="backfill", account_client=telethon)).channels

    assert outcome.error is None
    stored = [r[0] for r in rows(config.database, "SELECT post_id FROM posts ORDER BY post_id")]
    assert stored == [i for i in range(1, 251) if i not in (150, 151)]
    [(text, media, grouped)] = rows(config.database, "SELECT text, media, grouped_id FROM posts WHERE post_id = 149")
    assert (text, grouped) == ("Фото", 149)
    assert '"post_id": 150' in media and '"post_id": 151' in media
    history = [c for c in telethon.calls if c.startswith("iter_messages")]
    assert history[0] == "iter_messages MFARussia offset_id=0" and len(history) <= 5
    assert rows(config.database, "SELECT title, telegram_id, backfill_done_at IS NOT NULL FROM channels") == [
        ("MFARussia title", 1115334455, 1)]


async def test_an_interrupted_account_backfill_resumes(telethon, make_config):
    messages = telethon.channel("MFARussia")
    for post_id in range(1, 351):
        messages[post_id] = message(post_id, f"Post {post_id}")
    telethon.fail_history_after = 2
    config = account_config(make_config, "MFARussia")

    [failed] = (await archive_channels(config, ["MFARussia"], mode="backfill", account_client=telethon)).channels
    assert "connection reset" in failed.error
    partial = rows(config.database, "SELECT count(*) FROM posts")[0][0]
    assert 0 < partial < 350

    telethon.fail_history_after = None
    [done] = (await archive_channels(config, ["MFARussia"], mode="backfill", account_client=telethon)).channels
    assert done.error is None
    assert rows(config.database, "SELECT count(*), min(post_id), max(post_id) FROM posts") == [(350, 1, 350)]


async def test_sweep_finds_missed_posts_edits_and_deletions(telethon, make_config):
    messages = telethon.channel("MFARussia")
    for post_id in range(1, 31):
        messages[post_id] = message(post_id, f"Post {post_id}")
    config = account_config(make_config, "MFARussia")
    await archive_channels(config, ["MFARussia"], mode="backfill", account_client=telethon)
    messages[31] = message(31, "A post the live listener missed")
    messages[20] = message(20, "Post 20, corrected", edit_date=START + timedelta(days=3))
    del messages[25]

    [outcome] = (await archive_channels(config, ["MFARussia"], mode="sync", account_client=telethon)).channels

    assert (outcome.saved.new, outcome.saved.changed, outcome.saved.deleted) == (1, 1, 1)
    assert rows(config.database, "SELECT version, text, edited FROM posts WHERE post_id = 20") == [
        (2, "Post 20, corrected", 1)]
    assert rows(config.database, "SELECT post_id FROM posts WHERE deleted_at IS NOT NULL") == [(25,)]
    assert "get_messages MFARussia [25]" in telethon.calls
    assert rows(config.database, "SELECT post_id, detail FROM post_events WHERE kind = 'deleted'") == [
        (25, "Telegram returns no message with this id (account)")]  # what said so, not a page it never read


async def test_a_short_flood_wait_is_slept_through(telethon, make_config):
    telethon.channel("MFARussia")[1] = message(1, "one")
    telethon.floods = [1]
    config = account_config(make_config, "MFARussia")
    started = asyncio.get_running_loop().time()
    [outcome] = (await archive_channels(config, ["MFARussia"], mode="sync", account_client=telethon)).channels
    assert outcome.error is None and asyncio.get_running_loop().time() - started >= 1.0
    assert rows(config.database, "SELECT count(*) FROM posts") == [(1,)]


async def test_a_long_flood_wait_moves_an_auto_channel_to_the_web_preview(telethon, tme, make_config):
    telethon.channel("MFARussia")[1] = message(1, "Post number 1 about the Eurasian charter",
                                               date=datetime(2020, 1, 1, 1, tzinfo=UTC))
    tme.channel("MFARussia").add(1)
    telethon.floods = [3600]
    auto = account_config(make_config, "MFARussia", source="auto")
    only_account = account_config(make_config, "MFARussia", source="account")

    [failed] = (await archive_channels(only_account, ["MFARussia"], mode="sync", account_client=telethon)).channels
    assert "FloodWait" in failed.error
    telethon.floods = [3600]
    [outcome] = (await archive_channels(auto, ["MFARussia"], mode="sync", account_client=telethon)).channels

    assert outcome.error is None and tme.page_requests() == ["/s/MFARussia"]
    assert rows(auto.database, "SELECT text FROM posts") == [("Post number 1 about the Eurasian charter",)]


async def test_web_and_account_give_the_same_content_for_the_same_post(telethon, tme, make_config, shared):
    page = (shared / "channel-page-swiftui_dev-before-262.html").read_text(encoding="utf-8")
    web = {p.post_id: p for p in parse_channel_page(page, "swiftui_dev").posts}[247]
    text = web.text
    account_message = types.Message(
        id=247, peer_id=types.PeerChannel(1492664793), date=datetime(2023, 7, 17, 16, 55, 41, tzinfo=UTC),
        message=text + "  ", post=True, views=2801, post_author="Alex Kraev", edit_date=START,
        entities=[types.MessageEntityTextUrl(offset=5, length=len("swift package"),
                                             url="https://github.com/AppPear/ChartView"),
                  types.MessageEntityHashtag(offset=text.index("#swiftpm"), length=8)],
        media=types.MessageMediaWebPage(webpage=types.WebPage(
            id=1, url="https://github.com/AppPear/ChartView", display_url="github.com/AppPear/ChartView", hash=0,
            site_name="GitHub", title="GitHub - AppPear/ChartView: ChartView made in SwiftUI",
            description="ChartView made in SwiftUI. Contribute to AppPear/ChartView development by creating "
                        "an account on GitHub.", attributes=[])))
    [account] = map_messages([account_message], "swiftui_dev")

    assert (account.text, account.date, account.edited, account.author) == (web.text, web.date, web.edited, web.author)
    assert account.links == web.links and account.link_preview == web.link_preview
    assert account.content_hash() == web.content_hash()

    # Switching the channel from web to account writes no new version.
    tme.channel("swiftui_dev").posts.update({247: message_wraps(page)[247]})
    telethon.channel("swiftui_dev", channel_id=1492664793)[247] = account_message
    config = account_config(make_config, "swiftui_dev", source="web")
    await archive_channels(config, ["swiftui_dev"], mode="sync")
    config = account_config(make_config, "swiftui_dev", source="account")
    [outcome] = (await archive_channels(config, ["swiftui_dev"], mode="sync", account_client=telethon)).channels
    assert (outcome.saved.unchanged, outcome.saved.changed) == (1, 0)
    assert rows(config.database, "SELECT version, views FROM posts") == [(1, 2801)]


def test_the_session_file_is_created_private(tmp_path):
    session = create_session_file(tmp_path / "secrets" / "legation")
    assert session.name == "legation.session"
    assert stat.S_IMODE(os.stat(session).st_mode) == 0o600


def test_the_proxy_in_telethons_form():
    assert telethon_proxy("socks5h://user:p%40ss@127.0.0.1:1080") == {
        "proxy_type": "socks5", "addr": "127.0.0.1", "port": 1080, "username": "user", "password": "p@ss",
        "rdns": True}
    assert telethon_proxy(None) is None


async def test_live_updates_poll_at_once_and_deletions_apply(telethon, make_config, tmp_path):
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    messages = telethon.channel("MFARussia")
    for post_id in range(1, 6):
        messages[post_id] = message(post_id, f"Post {post_id}")
    config = account_config(make_config, "MFARussia")
    await archive_channels(config, ["MFARussia"], mode="backfill", account_client=telethon)

    async with open_archive(config.database) as conn:
        jobs = await _live_jobs(telethon, config, conn)
        scheduler = AsyncIOScheduler()
        jobs.install(scheduler)  # not started: next_run_time shows what a live update asks for
        later = datetime.now(UTC) + timedelta(hours=1)
        scheduler.modify_job("poll:MFARussia", next_run_time=later)

        new = message(6, "Posted just now")
        await telethon.push(types.UpdateNewChannelMessage(message=new, pts=10, pts_count=1))
        await telethon.push(types.UpdateDeleteChannelMessages(channel_id=1115334455, messages=[2, 99],
                                                              pts=11, pts_count=1))
        await telethon.push(types.UpdateUserName(user_id=5, first_name="A", last_name="B", usernames=[]))  # not the archive's concern

        assert scheduler.get_job("poll:MFARussia").next_run_time < later
    assert rows(config.database, "SELECT post_id FROM posts WHERE deleted_at IS NOT NULL") == [(2,)]
    assert rows(config.database, "SELECT kind, detail FROM post_events") == [
        ("deleted", "deleted in Telegram (live update)")]


async def test_media_are_downloaded_only_when_asked_and_small_enough(telethon, make_config, tmp_path):
    async def download_media(message, file):  # the client double saves what the network would send
        path = Path(file + ".jpg")
        path.write_bytes(b"\xff\xd8 photo of post %d" % message.id)
        return str(path)

    telethon.download_media = download_media
    messages = telethon.channel("MFARussia")
    messages[1] = message(1, "a photo", media=photo())
    big = types.Document(id=2, access_hash=1, file_reference=b"", date=START, mime_type="video/mp4",
                         size=50 * 1024 * 1024, dc_id=2, attributes=[types.DocumentAttributeFilename("big.mp4")])
    messages[2] = message(2, "a big file", media=types.MessageMediaDocument(document=big))
    config = account_config(make_config, "MFARussia")
    config = replace(config, channels=tuple(replace(c, download_media=True) for c in config.channels),
                     telegram=replace(config.telegram, media_dir=tmp_path / "media"))

    await archive_channels(config, ["MFARussia"], mode="sync", account_client=telethon)

    media = dict(rows(config.database, "SELECT post_id, media FROM posts"))
    assert '"size": 52428800' in media[2]  # the big file is described, not downloaded
    # the photo is in the same content-addressed store as the web preview's files
    [(post_id, role, status, path)] = rows(config.database, "SELECT m.post_id, m.role, m.status, f.path FROM "
                                                            "post_media m JOIN media_files f ON f.sha256 = m.sha256")
    assert (post_id, role, status) == (1, "photo", "ok")
    stored = config.database.parent / "legation-media" / path
    assert stored.read_bytes().endswith(b"post 1") and path.startswith(path.split("/")[0] + "/")
    assert not [p for p in (tmp_path / "media").rglob("*") if p.is_file()]  # nothing left waiting


async def test_buttons_are_the_same_rows_from_both_sources(telethon, tme, make_config):
    keyboard = ('<div class="tgme_widget_message_inline_keyboard"><div class="tgme_widget_message_inline_row">'
                '<a class="tgme_widget_message_inline_button url_button" href="https://mid.ru/ru/press/1/">'
                '<span class="tgme_widget_message_inline_button_text">Читать</span></a></div></div>')
    web_page = parse_channel_page(
        '<div class="tgme_widget_message js-widget_message" data-post="MFARussia/7"><div class="tgme_widget_message_bubble">'
        '<div class="tgme_widget_message_text js-message_text">Заявление</div>' + keyboard +
        '<div class="tgme_widget_message_footer"><a class="tgme_widget_message_date" href="https://t.me/MFARussia/7">'
        '<time datetime="2024-05-01T07:00:00+00:00">07:00</time></a></div></div></div>', "MFARussia")
    markup = types.ReplyInlineMarkup(rows=[types.KeyboardInlineButtonRow(buttons=[
        types.KeyboardInlineButton(text="Обсудить", type=types.InlineButtonTypeCallback(data=b"x")),
        types.KeyboardInlineButton(text="Читать", type=types.InlineButtonTypeUrl(url="https://mid.ru/ru/press/1/"))])])
    [account] = map_messages([message(7, "Заявление", reply_markup=markup)], "MFARussia")
    [web] = web_page.posts

    assert account.buttons == web.buttons == ({"label": "Читать", "url": "https://mid.ru/ru/press/1/"},)
    assert [(link.url, link.kind) for link in account.links] == [(link.url, link.kind) for link in web.links] == [
        ("https://mid.ru/ru/press/1/", "button")]
    assert account.content_hash() == web.content_hash()


async def test_an_auto_channel_reads_what_the_preview_cannot_show_through_the_account(telethon, tme, make_config):
    messages = telethon.channel("MFARussia")
    messages[1] = message(1, "Заявление 1")
    messages[2] = message(2, "Текст, который веб-версия не показывает")
    channel = tme.channel("MFARussia")
    channel.add(1, text="Заявление 1")
    channel.add(2, channel.posts[1].replace("MFARussia/1", "MFARussia/2").replace(
        '<div class="tgme_widget_message_text js-message_text" dir="auto">Заявление 1</div>',
        '<div class="message_media_not_supported_label">Please open Telegram to view this post</div>'))
    telethon.floods = [3600]  # the account is rate limited: this round reads the web preview ...
    config = account_config(make_config, "MFARussia", source="auto")

    [outcome] = (await archive_channels(config, ["MFARussia"], mode="backfill", account_client=telethon)).channels

    assert outcome.error is None
    assert tme.page_requests()  # ... which was read
    assert rows(config.database, "SELECT post_id, text, media FROM posts ORDER BY post_id") == [
        (1, "Заявление 1", None), (2, "Текст, который веб-версия не показывает", None)]
    assert "get_messages MFARussia [2]" in telethon.calls


def two_channels(telethon, make_config, tmp_path_factory=None):
    for name in ("MFARussia", "MID_Russia"):
        messages = telethon.channel(name)
        messages[1] = message(1, f"{name} 1")
    config = make_config("MFARussia", "MID_Russia")
    return replace(config, channels=tuple(replace(c, source="account") for c in config.channels))


@pytest.mark.parametrize("bot", [False, True])
async def test_a_user_or_bot_is_refused_before_a_single_message_is_read(telethon, make_config, bot):
    telethon.entities["someone"] = types.User(id=42, bot=bot, username="someone", first_name="Someone")
    telethon.messages["someone"] = {1: message(1, "Your login code: 12345")}
    config = account_config(make_config, "someone")

    [outcome] = (await archive_channels(config, ["someone"], mode="backfill", account_client=telethon)).channels

    kind = "a bot" if bot else "a user"
    assert outcome.error == f"someone: @someone is {kind}, not a channel: not archived"
    assert [c for c in telethon.calls if not c.startswith("get_entity")] == []
    assert rows(config.database, "SELECT count(*) FROM posts") == [(0,)]


@pytest.mark.parametrize(("error", "said"), [
    (errors.ChannelPrivateError(request=None), "Telegram says ChannelPrivateError"),
    (errors.ChannelInvalidError(request=None), "Telegram says ChannelInvalidError"),
    (errors.UsernameNotOccupiedError(request=None), "Telegram says UsernameNotOccupiedError"),
    (errors.AuthKeyUnregisteredError(request=None), "run 'legation login' again"),
    (errors.SessionRevokedError(request=None), "run 'legation login' again"),
    (errors.RPCError(request=None, message="INTERNAL_SERVER_ERROR", code=500), "Telegram error RPCError"),
    (ValueError("Request was unsuccessful 5 time(s)"), "Telegram did not answer: Request was unsuccessful"),
])
async def test_every_telegram_error_is_the_channels_and_the_next_channel_goes_on(telethon, make_config, error, said):
    config = two_channels(telethon, make_config)
    telethon.errors = [error]  # the first request, for the first channel

    failed, fine = (await archive_channels(config, ["MFARussia", "MID_Russia"], mode="sync",
                                           account_client=telethon)).channels

    assert failed.error is not None and said in failed.error
    assert fine.error is None
    assert rows(config.database, "SELECT c.username, c.last_error IS NOT NULL FROM channels c ORDER BY c.id") == [
        ("MFARussia", 1), ("MID_Russia", 0)]


async def test_a_request_that_hangs_ends_at_the_timeout(telethon, make_config):
    config = two_channels(telethon, make_config)
    config = replace(config, telegram=replace(config.telegram, request_timeout=0.3))
    telethon.hang = True

    started = asyncio.get_running_loop().time()
    outcomes = (await archive_channels(config, ["MFARussia", "MID_Russia"], mode="sync",
                                       account_client=telethon)).channels

    assert asyncio.get_running_loop().time() - started < 5
    assert [o.error for o in outcomes] == ["channel MFARussia: no answer from Telegram within 0.3 s",
                                           "channel MID_Russia: no answer from Telegram within 0.3 s"]


async def test_a_client_that_gave_up_after_an_outage_is_reconnected(telethon, make_config):
    config = two_channels(telethon, make_config)
    telethon.connected = False  # Telethon stopped reconnecting while the network was down

    outcomes = (await archive_channels(config, ["MFARussia", "MID_Russia"], mode="sync",
                                       account_client=telethon)).channels

    assert [o.error for o in outcomes] == [None, None]
    assert telethon.calls.count("connect") == 1
    assert rows(config.database, "SELECT count(*) FROM posts") == [(2,)]


def test_the_client_hands_every_flood_wait_to_legation(tmp_path):
    from monitor.config.settings import TelegramConfig
    from monitor.sources.tg_client import make_client

    client = make_client(TelegramConfig(api_id=12345, api_hash="0123456789abcdef0123456789abcdef",
                                        session=tmp_path / "session"), None)
    assert client.flood_sleep_threshold == 0  # Telethon itself sleeps through none
    assert (client.session.server_address, client.session.port) != ("127.0.0.1", 1)


def test_another_server_and_its_key_are_what_the_client_uses(tmp_path):
    import rsa
    from telethon.crypto import rsa as telethon_rsa

    from monitor.config.settings import load_config
    from monitor.sources.tg_client import make_client

    public, _ = rsa.newkeys(512)
    (tmp_path / "server.pem").write_bytes(public.save_pkcs1())
    path = tmp_path / "legation.toml"
    path.write_text('[telegram]\napi_id = 12345\napi_hash = "0123456789abcdef"\nserver = "127.0.0.1:4430"\n'
                    'dc_id = 3\nserver_key = "server.pem"\n', encoding="utf-8")
    client = make_client(load_config(path).telegram, None)

    assert (client.session.dc_id, client.session.server_address, client.session.port) == (3, "127.0.0.1", 4430)
    assert telethon_rsa._compute_fingerprint(public) in telethon_rsa._server_keys
    client.session.close()
    path.write_text('[telegram]\napi_id = 12345\napi_hash = "0123456789abcdef"\ntest_servers = true\n')
    client = make_client(load_config(path).telegram, None)
    assert (client.session.dc_id, client.session.server_address, client.session.port) == (2, "149.154.167.40", 443)
    client.session.close()


def test_login_against_a_server_that_drops_the_connection_fails_in_one_line(tmp_path):
    import socket
    import subprocess
    import sys
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    accepted = []

    def drop_every_connection() -> None:
        listener.settimeout(0.2)
        while not stopped.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            accepted.append(connection.recv(64))
            connection.close()

    stopped = threading.Event()
    thread = threading.Thread(target=drop_every_connection, daemon=True)
    thread.start()
    config = tmp_path / "legation.toml"
    config.write_text(f'[telegram]\napi_id = 12345\napi_hash = "0123456789abcdefsecret"\n'
                      f'server = "127.0.0.1:{port}"\nsession = "s"\n', encoding="utf-8")
    try:
        done = subprocess.run([sys.executable, "-m", "monitor", "-c", str(config), "login"], input="",
                              capture_output=True, text=True, timeout=90, cwd=Path(__file__).resolve().parents[1])
    finally:
        stopped.set()
        thread.join()
        listener.close()

    assert accepted  # the client went to the configured server, nowhere else
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith("legation: login failed: cannot reach 127.0.0.1")
    assert "Traceback" not in done.stderr and "secret" not in done.stderr + done.stdout


def test_scheme_less_links_are_the_same_rows_from_both_sources():
    text = "Заявление: mid.ru/ru/foreign_policy/news/1982011/ и www.belta.by/x"
    entities = [types.MessageEntityUrl(offset=11, length=38), types.MessageEntityUrl(offset=52, length=14)]
    [account] = map_messages([message(5, text, entities=entities)], "MFARussia")
    [web] = parse_channel_page(
        '<div class="tgme_widget_message js-widget_message" data-post="MFARussia/5"><div class="tgme_widget_message_text'
        ' js-message_text">Заявление: <a href="http://mid.ru/ru/foreign_policy/news/1982011/">mid.ru/ru/foreign_policy'
        '/news/1982011/</a> и <a href="http://www.belta.by/x">www.belta.by/x</a></div></div>', "MFARussia").posts

    assert [(link.url, link.kind) for link in account.links] == [(link.url, link.kind) for link in web.links] == [
        ("http://mid.ru/ru/foreign_policy/news/1982011/", "text"), ("http://www.belta.by/x", "text")]
    assert account.content_hash() == web.content_hash()


async def test_a_live_deletion_wins_over_a_page_read_before_it(telethon, make_config):
    messages = telethon.channel("MFARussia")
    for post_id in range(1, 6):
        messages[post_id] = message(post_id, f"Post {post_id}")
    config = account_config(make_config, "MFARussia")
    await archive_channels(config, ["MFARussia"], mode="backfill", account_client=telethon)

    async def deleted_while_the_page_was_in_flight() -> None:  # what the live listener records
        async with open_archive(config.database) as other, transaction(other):
            await save_deletion(other, 1, 3, utc_now(), "deleted in Telegram (live update)")

    telethon.after_history = deleted_while_the_page_was_in_flight
    await archive_channels(config, ["MFARussia"], mode="sync", account_client=telethon)

    assert rows(config.database, "SELECT deleted_at IS NOT NULL FROM posts WHERE post_id = 3") == [(1,)]
    assert rows(config.database, "SELECT kind FROM post_events WHERE post_id = 3") == [("deleted",)]


async def _until(condition: Callable[[], bool], timeout: float) -> float:
    """Wait until ``condition`` holds; the seconds it took."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    while not condition():
        assert loop.time() - started < timeout, "condition not reached in time"
        await asyncio.sleep(0.05)
    return loop.time() - started


@pytest.mark.parametrize("start", ["online", "offline"])
async def test_the_daemon_survives_an_outage_and_archives_what_was_posted_during_it(telethon, make_config, start):
    from monitor.daemon.service import run_daemon

    messages = telethon.channel("MFARussia")
    for post_id in range(1, 6):
        messages[post_id] = message(post_id, f"Post {post_id}")
    config = account_config(make_config, "MFARussia")
    config = replace(config, schedule=replace(config.schedule, poll_interval=0.5), pages=replace(config.pages, follow=()))
    # the archive may exist before its tables do (the daemon is migrating it): nothing archived yet
    count = lambda: (read_only(config.database, "SELECT count(*) FROM posts") or [(0,)])[0][0]  # noqa: E731
    if start == "offline":
        telethon.outage()  # the daemon starts while Telegram is unreachable
    stop = asyncio.Event()
    daemon = asyncio.create_task(run_daemon(config, stop, account_client=telethon))
    try:
        if start == "online":
            await _until(lambda: count() == 5, timeout=10)
            assert telethon.calls.count("catch_up") == 1
            telethon.outage()  # Telethon gives up reconnecting: every request would fail or hang
        for post_id in (6, 7):  # published during the outage
            messages[post_id] = message(post_id, f"Posted during the outage {post_id}")
        await asyncio.sleep(2.5)  # polls come and fail meanwhile; the daemon lives on
        assert not daemon.done()
        failed = rows(config.database, "SELECT count(*) FROM runs WHERE job = 'poll:MFARussia' AND outcome = 'failed'")
        assert failed[0][0] >= 2
        catch_ups = telethon.calls.count("catch_up")

        telethon.network_down = False  # the network is back
        took = await _until(lambda: count() == 7, timeout=10)

        assert took < 0.5 + 4.0  # one poll interval, plus the reconnect back-off reached in 2.5 s
        assert telethon.calls.count("catch_up") == catch_ups + 1  # live updates caught up after the reconnect
        new = message(8, "Live after the outage")
        messages[8] = new
        await telethon.push(types.UpdateNewChannelMessage(message=new, pts=20, pts_count=1))
        await _until(lambda: count() == 8, timeout=5)
    finally:
        stop.set()
        await asyncio.wait_for(daemon, 15)


async def test_an_auto_channel_reads_the_web_preview_while_telegram_is_unreachable(telethon, tme, make_config):
    from monitor.sources.routed import RoutedSource
    from monitor.sources.tg_client import AccountSource
    from monitor.sources.webpreview import WebPreviewSource

    config = two_channels(telethon, make_config)
    config = replace(config, channels=tuple(replace(c, source="auto") for c in config.channels))
    telethon.channel("MFARussia")[1] = message(1, "From the account")
    tme.channel("MFARussia").add(1)
    tme.channel("MID_Russia").add(1)
    telethon.outage()

    outcomes = (await archive_channels(config, ["MFARussia", "MID_Russia"], mode="sync",
                                       account_client=telethon)).channels

    assert [o.error for o in outcomes] == [None, None]
    assert tme.page_requests() == ["/s/MFARussia", "/s/MID_Russia"]
    assert telethon.calls == ["connect"]  # one attempt; the back-off spares Telegram the rest of the round
    # a FloodWait sends an auto channel to the web only until the wait is over
    telethon.network_down, telethon.connected = False, True
    telethon.floods = [1]
    from monitor.net.client import HttpClient
    async with HttpClient(config.network) as http:
        routed = RoutedSource(WebPreviewSource(http, config.telegram.web_url),
                              AccountSource(telethon, max_flood_sleep=0), {"MFARussia": "auto"})
        await routed.fetch_page("MFARussia")
        assert tme.page_requests()[-1] == "/s/MFARussia" and len(tme.page_requests()) == 3
        await asyncio.sleep(1.1)
        page = await routed.fetch_page("MFARussia")
    assert [p.text for p in page.posts] == ["From the account"]


async def test_a_file_reference_that_expired_is_renewed_once_and_a_failed_file_is_noted(telethon, make_config,
                                                                                       tmp_path):
    expired = {1: 1, 3: 99}  # post 1: expired once; post 3: every time

    async def download_media(message, file):
        if expired.get(message.id):
            expired[message.id] -= 1
            raise errors.FileReferenceExpiredError(request=None)
        path = Path(file + ".jpg")
        path.write_bytes(b"photo %d" % message.id)
        return str(path)

    telethon.download_media = download_media
    messages = telethon.channel("MFARussia")
    for post_id in (1, 2, 3):
        messages[post_id] = message(post_id, f"photo {post_id}", media=photo())
    config = account_config(make_config, "MFARussia")
    config = replace(config, channels=tuple(replace(c, download_media=True) for c in config.channels),
                     telegram=replace(config.telegram, media_dir=tmp_path / "media"))

    [outcome] = (await archive_channels(config, ["MFARussia"], mode="backfill", account_client=telethon)).channels

    assert outcome.error is None
    media = {post_id: json.loads(text)[0] for post_id, text in rows(config.database, "SELECT post_id, media FROM posts")}
    stored = dict(rows(config.database, "SELECT post_id, status FROM post_media"))
    assert stored == {1: "ok", 2: "ok"}  # renewed once, then saved; post 3's file is not
    assert "FileReferenceExpiredError" in media[3]["file_error"]
    assert telethon.calls.count("get_messages MFARussia [1]") == 1  # the message read again for a fresh reference


async def test_a_forward_names_the_channel_and_links_it_as_the_web_preview_does(telethon, make_config):
    telethon.others = [types.Channel(id=777, title="МИД России", broadcast=True, photo=types.ChatPhotoEmpty(),
                                     date=START, username="mid_rf")]
    messages = telethon.channel("MFARussia")
    signed = dict(date=START, from_id=types.PeerChannel(777), channel_post=42, post_author="Пресс-служба")
    messages[1] = message(1, "forwarded", fwd_from=types.MessageFwdHeader(**signed))
    private = dict(date=START, from_id=types.PeerChannel(888), channel_post=7)
    messages[2] = message(2, "from a private channel", fwd_from=types.MessageFwdHeader(**private))
    hidden = types.MessageFwdHeader(date=START, from_name="Иван Иванов")
    messages[3] = message(3, "from a person who hides their account", fwd_from=hidden)
    config = account_config(make_config, "MFARussia")

    await archive_channels(config, ["MFARussia"], mode="sync", account_client=telethon)

    assert rows(config.database, "SELECT post_id, forwarded_from, forwarded_from_url FROM posts ORDER BY post_id") == [
        (1, "МИД России", "https://t.me/mid_rf/42"),
        (2, "channel 888", "https://t.me/c/888/7"),
        (3, "Иван Иванов", None),
    ]


@pytest.mark.parametrize("join", [False, True])
async def test_membership_subscribers_and_description_come_from_the_account(telethon, tme, make_config, join):
    telethon.members = False  # the account follows nothing: Telegram pushes it no live updates
    telethon.channel("MFARussia")[1] = message(1, "Post 1")
    config = account_config(make_config, "MFARussia")
    config = replace(config, channels=tuple(replace(c, join=join) for c in config.channels))

    await archive_channels(config, ["MFARussia"], mode="sync", account_client=telethon)

    assert telethon.joined == (["MFARussia"] if join else [])
    assert rows(config.database, "SELECT subscribers, description, account_member FROM channels") == [
        (1234, "About MFARussia", int(join))]
    status = subprocess.run([sys.executable, "-m", "monitor", "-c", str(config.source), "status"],
                            capture_output=True, text=True, timeout=60, cwd=Path(__file__).resolve().parents[1])
    said = "MFARussia: live updates off: the account is not a member (set join = true, or join it in Telegram)"
    assert (said in status.stdout) is not join
    tme.channel("MFARussia").add(2)  # a round through the web preview knows nothing of membership ...
    web = replace(config, channels=tuple(replace(c, source="web") for c in config.channels))
    await archive_channels(web, ["MFARussia"], mode="sync", account_client=telethon)
    assert rows(config.database, "SELECT account_member FROM channels") == [(int(join),)]  # ... and keeps it


async def _live_jobs(telethon, config, conn):
    from monitor.alerts.deliver import AppriseNotifier
    from monitor.daemon.jobs import Jobs
    from monitor.daemon.service import round_settings
    from monitor.sources.routed import RoutedSource
    from monitor.sources.tg_client import AccountSource
    from monitor.sources.tg_live import LiveListener

    source = RoutedSource(None, AccountSource(telethon), {"MFARussia": "account"})
    jobs = Jobs(conn, source, None, config, round_settings(config), AppriseNotifier())
    await LiveListener(source.account, jobs.on_live).start()
    return jobs


async def test_a_live_edit_of_a_post_older_than_the_window_is_saved_at_once(telethon, make_config):
    messages = telethon.channel("MFARussia")
    for post_id in range(1, 251):
        messages[post_id] = message(post_id, f"Post {post_id}")
    config = account_config(make_config, "MFARussia")
    await archive_channels(config, ["MFARussia"], mode="backfill", account_client=telethon)

    async with open_archive(config.database) as conn:
        await _live_jobs(telethon, config, conn)  # no scheduler: nothing but the event saves it
        edited = message(3, "Post 3, quietly amended", edit_date=START + timedelta(days=30))
        messages[3] = edited
        await telethon.push(types.UpdateEditChannelMessage(message=edited, pts=20, pts_count=1))

    assert rows(config.database, "SELECT text FROM post_versions WHERE post_id = 3 ORDER BY version") == [
        ("Post 3",), ("Post 3, quietly amended",)]


async def test_the_sweep_is_scheduled_from_its_last_run_not_from_each_start(telethon, make_config):
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    from monitor.daemon.service import _sweep_base
    from storage.runs import save_run_start

    config = account_config(make_config, "MFARussia")
    await archive_channels(config, ["MFARussia"], mode="backfill", account_client=telethon)
    day = config.schedule.recheck_interval
    async with open_archive(config.database) as conn:
        async with transaction(conn):
            await save_run_start(conn, "poll:MFARussia", (datetime.now(UTC) - timedelta(days=3)).strftime(
                "%Y-%m-%dT%H:%M:%SZ"))
        jobs = await _live_jobs(telethon, config, conn)

        never = AsyncIOScheduler()
        jobs.install(never, await _sweep_base(conn))  # no sweep yet, the daemon first ran 3 days ago
        assert never.get_job("recheck").next_run_time <= datetime.now(UTC) + timedelta(seconds=5)

        async with transaction(conn):
            await save_run_start(conn, "recheck", (datetime.now(UTC) - timedelta(hours=23)).strftime(
                "%Y-%m-%dT%H:%M:%SZ"))
        restarted = AsyncIOScheduler()
        jobs.install(restarted, await _sweep_base(conn))  # swept 23 hours ago: due in about an hour
        due = restarted.get_job("recheck").next_run_time - datetime.now(UTC)
        assert timedelta(seconds=day) - timedelta(hours=23, minutes=5) < due < timedelta(hours=1, minutes=5)
