"""The account's live updates, as the project's own events: past this module, nothing knows Telethon.

Telegram pushes updates only for channels the account has joined, and only while connected;
after an outage Telethon's ``catch_up`` asks for what was missed. :class:`LiveListener`
turns raw updates into :data:`LiveEvent` values and catches up again after every reconnect
of the :class:`~monitor.sources.tg_client.AccountSource`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from telethon.tl import types

from monitor.sources.events import LiveEvent, PostChanged, PostsDeleted
from monitor.sources.tg_client import AccountSource

log = structlog.get_logger(__name__)


Handler = Callable[[LiveEvent], Awaitable[None]]


def live_event(update: Any) -> LiveEvent | None:
    """The event a raw Telethon update means for the archive; None for every other update."""
    if isinstance(update, (types.UpdateNewChannelMessage, types.UpdateEditChannelMessage)):
        channel_id = getattr(getattr(update.message, "peer_id", None), "channel_id", None)
        edited = isinstance(update, types.UpdateEditChannelMessage)
        return PostChanged(channel_id, update.message.id, edited) if channel_id else None
    if isinstance(update, types.UpdateDeleteChannelMessages):
        return PostsDeleted(update.channel_id, tuple(update.messages))
    return None


class LiveListener:
    """Live updates of the account to ``handler``, caught up at start and after each reconnect."""

    def __init__(self, account: AccountSource, handler: Handler) -> None:
        self.account, self.handler = account, handler

    async def start(self) -> None:
        from telethon import events

        self.account.client.add_event_handler(self._on_update, events.Raw)
        self.account.on_reconnect.append(self.catch_up)
        if self.account.connected():
            await self.catch_up()
        else:
            log.warning("live_updates_waiting", reason="Telegram is not reachable; caught up once it is")

    async def _on_update(self, update: Any) -> None:
        event = live_event(update)
        if event is not None:
            await self.handler(event)

    async def catch_up(self) -> None:
        """Ask Telegram for the updates missed while away (best effort: the polls cover any gap)."""
        try:
            await asyncio.wait_for(self.account.client.catch_up(), self.account.request_timeout)
        except Exception as exc:  # noqa: BLE001 - any failure here is covered by the next poll
            log.warning("catch_up_failed", error=repr(exc))
        else:
            log.info("live_updates_caught_up")
