"""Logging, configured in one place: console on a terminal, JSON lines otherwise."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, TextIO

import structlog

QUIET_LIBRARIES = ("apscheduler", "httpx", "httpcore", "telethon", "trafilatura", "htmldate", "courlan")

# user:password@ in URLs (proxy credentials) never reaches a log line.
URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/@\s:]+:[^/@\s]*@", re.I)


_SECRETS: set[str] = set()
MIN_SECRET = 6  # shorter fragments would mask ordinary words


def register_secrets(values: Iterable[str | None]) -> None:
    """Values never to show in a log line (API hash, tokens in notification URLs, passwords)."""
    _SECRETS.update(v for v in values if v and len(v) >= MIN_SECRET)


def redact(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Structlog processor: mask URL credentials and registered secrets in every string field."""
    for key, value in event.items():
        if isinstance(value, str):
            event[key] = redact_text(value)
        elif isinstance(value, (list, tuple)):
            event[key] = [redact_text(v) if isinstance(v, str) else v for v in value]
    return event


def redact_text(value: str) -> str:
    if "@" in value:
        value = URL_CREDENTIALS.sub(r"\g<scheme>***:***@", value)
    for secret in sorted(_SECRETS, key=len, reverse=True):
        if secret in value:
            value = value.replace(secret, "***")
    return value


def configure_logging(level: str = "info", fmt: str = "auto", stream: TextIO | None = None) -> None:
    """Send structlog events to ``stream`` (stderr) at ``level``; ``fmt`` is auto, console or json."""
    stream = stream or sys.stderr
    if fmt == "auto":
        fmt = "console" if stream.isatty() else "json"
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=stream.isatty())
        if fmt == "console"
        else structlog.processors.JSONRenderer(ensure_ascii=False)
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact,
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper())),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
    _route_stdlib_logging(stream, renderer, shared, level)


def _route_stdlib_logging(stream: TextIO, renderer: Any, shared: list[Any], level: str) -> None:
    """APScheduler, httpx and Telethon log through ``logging``: same format, quieter level."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info, renderer],
    ))
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_legation", False)]:
        root.removeHandler(old)
    handler._legation = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper()))
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
