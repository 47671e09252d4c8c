"""Delivery: undelivered alerts become Apprise notifications, with retries and digests."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import structlog

from monitor.config.settings import AlertRule, AlertsConfig
from monitor.log import redact_text
from monitor.net.retry import CLOCK_SLACK, backoff
from storage.alerts import get_due_alerts, save_delivered, save_delivery_failure
from storage.db import Connection, transaction
from storage.models import AlertRow, age_of, utc_in, utc_now

log = structlog.get_logger(__name__)

KIND_LABELS = {"post": "new post", "edit": "edited post", "deletion": "deleted post", "page": "release page"}


class Notifier(Protocol):
    """Sends one message to some notification URLs; returns an error message, or None on success."""

    async def send(self, urls: Sequence[str], title: str, body: str) -> str | None: ...


class AppriseNotifier:
    """Any service Apprise knows: tgram://, mailto://, json://, slack://, ...; each message is
    sent by a child process (:mod:`monitor.alerts.send`), killed if the caller stops waiting."""

    async def send(self, urls: Sequence[str], title: str, body: str) -> str | None:
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "monitor.alerts.send", stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
        level = logging.getLogger("apprise").getEffectiveLevel()
        message = json.dumps({"urls": list(urls), "title": title, "body": body, "level": level}).encode()
        try:
            out, _ = await child.communicate(message)
        finally:
            if child.returncode is None:  # given up on (the deadline, a shutdown): nothing outlives it
                child.kill()
                await asyncio.shield(child.wait())
        try:
            answer = json.loads(out)
            error: str | None = answer["error"]
            records = list(answer.get("log") or [])
        except (ValueError, KeyError, TypeError, AttributeError):
            return f"the notification process ended without an answer (exit code {child.returncode})"
        apprise_log = logging.getLogger("apprise")
        for levelno, said in records:  # through the daemon's logging, where secrets are masked
            apprise_log.log(int(levelno), "%s", said)
        return error


@dataclass(slots=True)
class DeliveryOutcome:
    sent: int = 0
    failed: int = 0
    held: int = 0


async def deliver_alerts(conn: Connection, config: AlertsConfig, notifier: Notifier,
                         web_url: str = "https://t.me") -> DeliveryOutcome:
    """Send what is due: one message per alert, or one per rule and period for digest rules."""
    outcome = DeliveryOutcome()
    rules = {rule.name: rule for rule in config.rules}
    batches: dict[str, list[AlertRow]] = defaultdict(list)
    # A run sends for at most its interval: what is left waits for the next run, so that slow
    # services cannot pile up runs of this job.
    deadline = time.monotonic() + config.deliver_interval
    latest = utc_in(config.max_retry_wait + CLOCK_SLACK)  # no alert waits longer than that
    for alert in await get_due_alerts(conn, utc_now(), latest=latest):
        if time.monotonic() > deadline:
            outcome.held += 1
            continue
        rule = rules.get(alert.rule)
        urls = rule_notify(rule, config)
        if not urls:
            continue  # recorded, nowhere to send: `legation alerts` shows it
        if rule is not None and rule.digest:
            batches[alert.rule].append(alert)
        else:
            await _send(conn, config, notifier, urls, [alert], web_url, outcome)
    for name, alerts in batches.items():
        rule = rules[name]
        if time.monotonic() > deadline:
            outcome.held += len(alerts)
            continue
        oldest = max(age_of(a.created_at) for a in alerts)
        if oldest < (rule.digest or 0) and all(a.attempts == 0 for a in alerts):
            outcome.held += len(alerts)
            continue
        await _send(conn, config, notifier, rule_notify(rule, config), alerts, web_url, outcome)
    return outcome


async def _send(conn: Connection, config: AlertsConfig, notifier: Notifier, urls: Sequence[str],
                alerts: list[AlertRow], web_url: str, outcome: DeliveryOutcome) -> None:
    title, body = compose(alerts, web_url)
    try:
        async with asyncio.timeout(config.delivery_timeout):
            error = await notifier.send(urls, title, body)
    except TimeoutError:
        error = f"no answer within {config.delivery_timeout:g} s (delivery_timeout)"
    if error is not None:
        error = redact_text(error)  # services quote their URL, tokens included
    ids = [a.id for a in alerts]
    async with transaction(conn):
        if error is None:
            await save_delivered(conn, ids, utc_now())
        else:
            attempt = max(a.attempts for a in alerts) + 1
            retry_at = None
            if attempt < config.max_attempts:
                retry_at = utc_in(backoff(config.retry_backoff, attempt, config.max_retry_wait))
            await save_delivery_failure(conn, ids, error, retry_at)
    if error is None:
        outcome.sent += len(alerts)
        log.info("alerts_delivered", rule=alerts[0].rule, count=len(alerts))
    else:
        outcome.failed += len(alerts)
        log.warning("alert_delivery_failed", rule=alerts[0].rule, count=len(alerts), error=error)


def compose(alerts: list[AlertRow], web_url: str) -> tuple[str, str]:
    """Title and body of one message (several alerts make a digest)."""
    first = alerts[0]
    if len(alerts) > 1:
        title = f"legation: {first.rule}: {len(alerts)} alerts"
    elif first.kind == "page":
        title = f"legation: {first.rule}: {first.page_title or first.page_url}"
    else:
        title = f"legation: {first.rule}: {KIND_LABELS[first.kind]} in {first.channel}"
    return title, "\n\n".join(describe(alert, web_url) for alert in alerts)


def describe(alert: AlertRow, web_url: str) -> str:
    """What happened, where, which terms matched in which words, and the linked page."""
    lines = [f"Rule: {alert.rule} ({KIND_LABELS[alert.kind]}"
             + (f", version {alert.version})" if alert.kind == "edit" else ")")]
    if alert.page_url:
        lines.append(f"Page: {alert.page_title or '(untitled)'}\n{alert.page_url}")
    else:
        lines.append(f"Post: {web_url}/{alert.channel}/{alert.post_id}" + (f" ({alert.post_date})" if alert.post_date else ""))
        if alert.page_title:
            lines.append(f"Linked page: {alert.page_title}")
    lines.append(f"Matched: {', '.join(alert.terms)}")
    if alert.context:
        lines.append(alert.context)
    return "\n".join(lines)


def rule_notify(rule: AlertRule | None, config: AlertsConfig) -> Sequence[str]:
    return (rule.notify if rule and rule.notify else ()) or config.notify

