"""Telethon messages to post records: the one place the account source's objects are read.

The records match what the web preview gives for the same post (text, links and
their kinds, dates, album layout, media types), so that a channel can switch source
without spurious versions. Telethon objects never leave this module and tg_client.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from telethon import helpers
from telethon.extensions import html as telethon_html
from telethon.tl import types

from monitor.sources.links import find_urls, is_autolink, make_links
from storage.models import ChannelInfo, Post, format_timestamp

SERVICE_TEXT = {
    types.MessageActionChannelCreate: "Channel created",
    types.MessageActionChatEditPhoto: "Channel photo updated",
    types.MessageActionChatDeletePhoto: "Channel photo removed",
    types.MessageActionPinMessage: "pinned a message",
}


def map_messages(messages: Iterable[Any], username: str) -> list[Post]:
    """Messages (any order) to posts, oldest first; an album becomes one post, as on the web."""
    albums: dict[int, list[Any]] = {}
    singles = []
    for message in messages:
        if isinstance(message, types.MessageEmpty) or message is None:
            continue
        if getattr(message, "grouped_id", None):
            albums.setdefault(message.grouped_id, []).append(message)
        else:
            singles.append(map_message(message, username))
    for members in albums.values():
        singles.append(_album(sorted(members, key=lambda m: m.id), username))
    return sorted(singles, key=lambda post: post.post_id)


def map_message(message: Any, username: str, *, album: Sequence[Any] = ()) -> Post:
    """One message (with the other members of its album, if any)."""
    text = (message.message or "").strip() or None if not isinstance(message, types.MessageService) else None
    entities = list(getattr(message, "entities", None) or [])
    preview = _preview(message.media)
    media = [item for member in (album or [message]) for item in _media(member, bool(album))]
    buttons = _buttons(getattr(message, "reply_markup", None))
    return Post(
        post_id=message.id,
        date=format_timestamp(message.date) if message.date else None,
        text=text if not isinstance(message, types.MessageService) else _service_text(message),
        html=telethon_html.unparse(message.message, entities).strip() or None if text else None,
        views=getattr(message, "views", None),
        author=getattr(message, "post_author", None),
        edited=bool(getattr(message, "edit_date", None)) and not getattr(message, "edit_hide", False),
        forwarded_from=_forward_name(message),
        forwarded_from_url=_forward_url(message),
        reply_to=_reply_to(message.reply_to),
        reply_to_url=f"https://t.me/{username}/{_reply_to(message.reply_to)}" if _reply_to(message.reply_to) else None,
        grouped_id=message.id if album else None,
        media=tuple(media),
        link_preview=preview,
        service=isinstance(message, types.MessageService),
        links=_links(message.message or "", entities, preview, buttons),
        buttons=buttons,
    )


def map_channel(entity: Any, username: str, full: Any = None) -> ChannelInfo:
    """A ``Channel`` (from ``get_entity``), with its ``ChannelFull`` if read, to the channel record."""
    return ChannelInfo(
        username=getattr(entity, "username", None) or username,
        telegram_id=getattr(entity, "id", None),
        title=getattr(entity, "title", None),
        description=(getattr(full, "about", None) or "").strip() or None,
        subscribers=getattr(full, "participants_count", None) or getattr(entity, "participants_count", None),
        account_member=not getattr(entity, "left", False),
    )


def _album(members: list[Any], username: str) -> Post:
    lead = next((m for m in members if (m.message or "").strip()), members[0])
    post = map_message(lead, username, album=members)
    # The web shows an album under its first id; the caption may sit on any member.
    return Post(**{**{k: getattr(post, k) for k in post.__slots__}, "post_id": members[0].id,
                   "grouped_id": members[0].id})


def _buttons(markup: Any) -> tuple[dict[str, str], ...]:
    """URL buttons of an inline keyboard, as the web preview shows them."""
    if not isinstance(markup, types.ReplyInlineMarkup):
        return ()
    found = []
    for row in markup.rows:
        for button in row.buttons:
            url = _button_url(button)
            if url:
                found.append({"label": " ".join(button.text.split()), "url": url})
    return tuple(found)


def _button_url(button: Any) -> str | None:
    """The URL of a URL button: ``KeyboardButtonUrl`` before layer 220, ``InlineButtonTypeUrl`` since."""
    new_style: Any = getattr(types, "InlineButtonTypeUrl", None)
    old_style: Any = getattr(types, "KeyboardButtonUrl", None)
    kind: Any = getattr(button, "type", None)
    if new_style is not None and isinstance(kind, new_style):
        return str(kind.url)
    if old_style is not None and isinstance(button, old_style):
        return str(button.url)
    return None


def _links(text: str, entities: list[Any], preview: dict[str, Any] | None,
           buttons: tuple[dict[str, str], ...] = ()) -> tuple[Any, ...]:
    surrogate = helpers.add_surrogate(text)
    candidates: list[tuple[str, str]] = []
    for entity in entities:
        label = helpers.del_surrogate(surrogate[entity.offset:entity.offset + entity.length])
        if isinstance(entity, types.MessageEntityUrl):  # Telegram's own auto-link, also without a scheme
            url = label.strip()
            candidates.append((url if "://" in url else f"http://{url}", "text"))
        elif isinstance(entity, types.MessageEntityTextUrl):
            kind = "text" if is_autolink(label.strip(), entity.url) else "hidden"
            candidates.extend((url, kind) for url in (find_urls(entity.url) if kind == "text" else [entity.url]))
        elif isinstance(entity, types.MessageEntityMention) and label.startswith("@"):
            candidates.append((f"https://t.me/{label[1:]}", "mention"))
    candidates.extend((url, "text") for url in find_urls(text.strip()))
    if preview and preview.get("url"):
        candidates.append((preview["url"], "preview"))
    candidates.extend((button["url"], "button") for button in buttons)
    return make_links(candidates)


def _preview(media: Any) -> dict[str, Any] | None:
    page = getattr(media, "webpage", None) if isinstance(media, types.MessageMediaWebPage) else None
    if not isinstance(page, types.WebPage):
        return None
    fields = {"url": page.url, "site": page.site_name, "title": page.title, "description": page.description}
    return {k: v for k, v in fields.items() if v}


def _media(message: Any, in_album: bool) -> list[dict[str, Any]]:
    media = message.media
    item: dict[str, Any] | None = None
    if isinstance(media, types.MessageMediaPhoto):
        item = {"type": "photo"}
    elif isinstance(media, types.MessageMediaDocument) and isinstance(media.document, types.Document):
        item = _document(media.document)
    elif isinstance(media, types.MessageMediaPoll):
        item = {"type": "poll", "question": _plain(media.poll.question),
                "options": [{"text": _plain(answer.text)} for answer in media.poll.answers]}
    elif isinstance(media, (types.MessageMediaGeo, types.MessageMediaVenue)) and isinstance(media.geo, types.GeoPoint):
        item = {"type": "location", "latitude": media.geo.lat, "longitude": media.geo.long}
    elif isinstance(message, types.MessageService) and isinstance(message.action, types.MessageActionChatEditPhoto):
        item = {"type": "photo"}
    if item is None:
        return []
    if in_album:
        item["post_id"] = message.id
    return [item]


def _document(document: Any) -> dict[str, Any]:
    attributes = {type(a): a for a in document.attributes}
    video = attributes.get(types.DocumentAttributeVideo)
    audio = attributes.get(types.DocumentAttributeAudio)
    name = attributes.get(types.DocumentAttributeFilename)
    item: dict[str, Any] = {"size": document.size, "mime": document.mime_type,
                            "file_name": name.file_name if name else None}
    if types.DocumentAttributeSticker in attributes:
        item["type"] = "sticker"
    elif video is not None:
        item.update(type="round_video" if video.round_message else "video", duration=int(video.duration))
    elif audio is not None and audio.voice:
        item.update(type="voice", duration=audio.duration)
    else:
        item.update(type="document", title=(audio.title if audio else None) or (name.file_name if name else None))
    return {k: v for k, v in item.items() if v is not None}


def _service_text(message: Any) -> str | None:
    action = message.action
    if isinstance(action, types.MessageActionChatEditTitle):
        return f"Channel name was changed to «{action.title}»"
    return SERVICE_TEXT.get(type(action))


def _plain(value: Any) -> str:
    return value.text if isinstance(value, types.TextWithEntities) else str(value)


def _forward_chat(message: Any) -> Any:
    """The channel a post was forwarded from, as Telethon resolved it from the answer's chats."""
    forward = getattr(message, "forward", None)
    return getattr(forward, "chat", None) if forward is not None else None


def _forward_name(message: Any) -> str | None:
    """As the web preview names it: the hidden sender's name, else the channel's title."""
    header = message.fwd_from
    if header is None:
        return None
    channel_id = header.from_id.channel_id if isinstance(header.from_id, types.PeerChannel) else None
    return (header.from_name or getattr(_forward_chat(message), "title", None) or header.post_author
            or (f"channel {channel_id}" if channel_id else None))


def _forward_url(message: Any) -> str | None:
    """``t.me/<username>/<post>`` for a public channel (as the web preview links it), else ``t.me/c/<id>``."""
    header = message.fwd_from
    if header is None or not isinstance(header.from_id, types.PeerChannel):
        return None
    post = f"/{header.channel_post}" if header.channel_post else ""
    username = getattr(_forward_chat(message), "username", None)
    return f"https://t.me/{username}{post}" if username else f"https://t.me/c/{header.from_id.channel_id}{post}"


def _reply_to(header: Any) -> int | None:
    if isinstance(header, types.MessageReplyHeader) and header.reply_to_peer_id is None:
        return header.reply_to_msg_id
    return None
