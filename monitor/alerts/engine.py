"""Matching hooks called inside the transactions that save posts, deletions and pages.

Each match becomes an ``alerts`` row in the same transaction as the content that
caused it, unique per rule and target version: a crash between the match and the
delivery loses nothing, and a restart never records (so never sends) it twice.
"""

from __future__ import annotations

from collections.abc import Sequence

import structlog

from monitor.alerts.rules import Match, Matcher
from monitor.config.settings import AlertsConfig
from storage.alerts import (
    get_echoed_statements,
    get_page_linkers,
    get_saved_versions,
    get_version_texts,
    save_alert,
)
from storage.db import Connection
from storage.models import age_of
from storage.pages import get_release_of

log = structlog.get_logger(__name__)


class AlertHooks:
    """What the round calls when it saves something an alert rule may care about."""

    def __init__(self, config: AlertsConfig) -> None:
        self.config = config
        self.matcher = Matcher(config.rules)
        by_name = {rule.name: rule for rule in config.rules}
        self._every_change = {name for name, rule in by_name.items() if rule.every_change}
        self._echo_rules = {name for name, rule in by_name.items() if rule.echoes}

    def _recent(self, date: str | None) -> bool:
        if not date:
            return True
        return age_of(date) <= self.config.max_age

    async def on_saved_posts(self, conn: Connection, channel_id: int, username: str,
                             post_ids: Sequence[int], seen_at: str) -> int:
        """New posts (scope ``posts``) and new versions (scope ``edits``) saved at ``seen_at``."""
        recorded = 0
        for saved in await get_saved_versions(conn, channel_id, post_ids, seen_at):
            if saved.version == 1:
                if not self._recent(saved.date):
                    continue  # a backfill of old posts is an archive, not news
                matches = self.matcher.match(saved.text, scope="posts", channels=[username])
                if self._echo_rules:
                    matches += await self._echoed(conn, channel_id, saved.post_id, {m.rule for m in matches})
                kind = "post"
            else:
                before = {m.rule for m in self.matcher.match(saved.previous_text, scope="edits", channels=[username])}
                matches = [m for m in self.matcher.match(saved.text, scope="edits", channels=[username])
                           if m.rule not in before or m.rule in self._every_change]
                kind = "edit"
            recorded += await self._record(conn, matches, kind, saved.version, seen_at,
                                           channel_id=channel_id, post_id=saved.post_id)
        return recorded

    async def _echoed(self, conn: Connection, channel_id: int, post_id: int, matched: set[str]) -> list[Match]:
        """The ``echoes`` rules that a statement this new post repeats (found as it was saved)
        matched, where that statement was posted: the repeat is the alert."""
        found: list[Match] = []
        for channel, other_post, kind, text in await get_echoed_statements(conn, channel_id, post_id):
            for match in self.matcher.match(text, scope="posts", channels=[channel]):
                if match.rule in self._echo_rules and match.rule not in matched:
                    matched.add(match.rule)
                    found.append(Match(match.rule, match.terms,
                                       f"{kind} of {channel}/{other_post}: {match.context}"))
        return found

    async def on_deletion(self, conn: Connection, channel_id: int, username: str, post_id: int,
                          now: str) -> int:
        """A confirmed deletion of a post whose text (any version) matched."""
        versions = await get_version_texts(conn, channel_id, post_id)
        found: dict[str, Match] = {}
        for _, text in versions:
            for match in self.matcher.match(text, scope="deletions", channels=[username]):
                found.setdefault(match.rule, match)
        version = versions[0][0] if versions else 0
        return await self._record(conn, list(found.values()), "deletion", version, now,
                                  channel_id=channel_id, post_id=post_id)

    async def on_page(self, conn: Connection, url: str, version: int, title: str | None,
                      text: str | None, previous: str | None, now: str) -> int:
        """A newly archived page (or a new version of one) whose title or text matched."""
        linkers = await get_page_linkers(conn, url)
        if version == 1 and linkers and not any(self._recent(date) for _, _, date in linkers):
            return 0
        channels = sorted({username for username, _, _ in linkers})
        content = "\n".join(part for part in (title, text) if part)
        matches = self.matcher.match(content, scope="pages", channels=channels)
        if version > 1:
            before = {m.rule for m in self.matcher.match(previous, scope="pages", channels=channels)}
            matches = [m for m in matches if m.rule not in before or m.rule in self._every_change]
        elif (release := await get_release_of(conn, url)) is not None:
            # a release's first match, in whichever language: its translations do not repeat it
            return await self._record(conn, matches, "page", version, now, page_url=url, target=f"release:{release}")
        return await self._record(conn, matches, "page", version, now, page_url=url)

    async def on_attachment(self, conn: Connection, page_url: str, url: str, text: str | None, now: str) -> int:
        """A document attached to a page (its text read), as a page of its own for the ``pages`` rules."""
        linkers = await get_page_linkers(conn, page_url)
        if linkers and not any(self._recent(date) for _, _, date in linkers):
            return 0  # a backfill's documents are an archive, not news
        channels = sorted({username for username, _, _ in linkers})
        matches = self.matcher.match(text, scope="pages", channels=channels)
        return await self._record(conn, matches, "page", 1, now, page_url=url)

    async def _record(self, conn: Connection, matches: Sequence[Match], kind: str, version: int,
                      now: str, **target: object) -> int:
        recorded = 0
        for match in matches:
            if await save_alert(conn, rule=match.rule, kind=kind, version=version, terms=match.terms,
                                context=match.context, now=now, **target):  # type: ignore[arg-type]
                recorded += 1
                log.info("alert_matched", rule=match.rule, kind=kind, terms=list(match.terms), **target)
        return recorded
