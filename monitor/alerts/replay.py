"""Running the rules over what is already archived, for a new rule or a check."""

from __future__ import annotations

from dataclasses import dataclass, field

from monitor.alerts.deliver import AppriseNotifier, deliver_alerts
from monitor.alerts.rules import Matcher
from monitor.config.settings import Config
from storage.alerts import get_page_linkers, save_alert
from storage.db import open_archive, transaction
from storage.models import utc_now
from storage.pages import get_pages_since
from storage.posts import get_posts_since


@dataclass(slots=True)
class ReplayReport:
    lines: list[str] = field(default_factory=list)
    recorded: int = 0
    sent: int = 0


async def replay_alerts(config: Config, since: str, *, send: bool) -> ReplayReport:
    """Match every post and page dated since ``since``; with ``send``, record and deliver the matches."""
    matcher = Matcher(config.alerts.rules)
    report = ReplayReport()
    async with open_archive(config.database, create=False) as conn:
        now = utc_now()
        async with transaction(conn):
            for post in await get_posts_since(conn, since):
                for match in matcher.match(post.text, scope="posts", channels=[post.username]):
                    report.lines.append(f"{post.date}  {match.rule}  {config.telegram.web_url}/{post.username}/"
                                        f"{post.post_id}  [{', '.join(match.terms)}]  {match.context}")
                    if send:
                        report.recorded += await save_alert(
                            conn, rule=match.rule, kind="post", version=post.version, terms=match.terms,
                            context=match.context, now=now, channel_id=post.channel_id, post_id=post.post_id)
            for page in await get_pages_since(conn, since):
                channels = sorted({u for u, _, _ in await get_page_linkers(conn, page.url)})
                content = "\n".join(p for p in (page.title, page.text) if p)
                for match in matcher.match(content, scope="pages", channels=channels):
                    report.lines.append(f"page  {match.rule}  {page.url}  [{', '.join(match.terms)}]  {match.context}")
                    if send:
                        report.recorded += await save_alert(
                            conn, rule=match.rule, kind="page", version=page.version, terms=match.terms,
                            context=match.context, now=now, page_url=page.url)
        if send:
            outcome = await deliver_alerts(conn, config.alerts, AppriseNotifier(), config.telegram.web_url)
            report.sent = outcome.sent
    return report
