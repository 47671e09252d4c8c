"""Logging, configured in one place: console on a terminal, JSON lines otherwise."""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, TextIO

import structlog

QUIET_LIBRARIES = ("apscheduler", "httpx", "httpcore", "telethon", "trafilatura", "htmldate", "courlan",
                   "asyncio", "hpack", "charset_normalizer")

# user:password@ in URLs (proxy credentials) never reaches a log line.
URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/@\s:]+:[^/@\s]*@", re.I)
# Credentials in headers and query strings, as libraries (Apprise at debug level) print them.
HEADER_CREDENTIALS = re.compile(r"(?i)\b(bearer|basic|token)(\s+)[A-Za-z0-9._~+/=-]{4,}")
KEY_CREDENTIALS = re.compile(
    r"(?i)\b(authorization|x-api-key|api[-_]?key|access[-_]?token|token|secret|password|passwd)"
    r"(\s*[:=]\s*|%3a%20|=)(?!\*\*\*)[^\s&,;'\"]+")


_SECRETS: set[str] = set()
MIN_SECRET = 4  # shorter fragments would mask ordinary words


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


def mask_credentials(value: str) -> str:
    """``scheme://user:password@host`` as ``scheme://***:***@host``."""
    return URL_CREDENTIALS.sub(r"\g<scheme>***:***@", value) if "@" in value else value


def redact_text(value: str) -> str:
    """Mask registered secrets, URL credentials and header or query credentials."""
    value = mask_credentials(value)
    for secret in sorted(_SECRETS, key=len, reverse=True):
        if secret in value:
            value = value.replace(secret, "***")
    value = HEADER_CREDENTIALS.sub(r"\1\2***", value)
    return KEY_CREDENTIALS.sub(r"\1\2***", value)


class StatusLine:
    """One line of live progress at the bottom of a terminal: log lines are written above it
    (erased, the log line written, redrawn), never glued onto it."""

    def __init__(self) -> None:
        self.text = ""
        self.stream: TextIO | None = None

    def show(self, text: str, stream: TextIO) -> None:
        self.stream = stream
        self.erase()
        self.text = text
        stream.write("\r" + text)
        stream.flush()

    def erase(self) -> None:
        if self.text and self.stream is not None:
            self.stream.write("\r" + " " * len(self.text) + "\r")

    def redraw(self) -> None:
        if self.text and self.stream is not None:
            self.stream.write(self.text)
            self.stream.flush()

    def finish(self) -> None:
        """Leave the last progress on screen, and the cursor on the next line."""
        if self.text and self.stream is not None:
            self.stream.write("\n")
            self.stream.flush()
        self.text = ""


STATUS = StatusLine()


class _AboveStatus:
    """A log stream that writes each line above the :data:`STATUS` line."""

    def __init__(self, stream: TextIO) -> None:
        self.stream, self.mid_line = stream, False

    def write(self, text: str) -> int:
        if not self.mid_line:
            STATUS.erase()
        written = self.stream.write(text)
        self.mid_line = not text.endswith("\n")
        if not self.mid_line:
            STATUS.redraw()
        return written

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return self.stream.isatty()


def colors_wanted(stream: TextIO) -> bool:
    """Colour on a terminal, unless NO_COLOR is set (https://no-color.org)."""
    return stream.isatty() and not os.environ.get("NO_COLOR")


def configure_logging(level: str = "info", fmt: str = "auto", stream: TextIO | None = None) -> None:
    """Send structlog events to ``stream`` (stderr) at ``level``; ``fmt`` is auto, console or json."""
    stream = stream or sys.stderr
    if fmt == "auto":
        fmt = "console" if stream.isatty() else "json"
    stream = _AboveStatus(stream)  # type: ignore[assignment]
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=colors_wanted(stream))
        if fmt == "console"
        else structlog.processors.JSONRenderer(ensure_ascii=False)
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact,
    ]
    # Redacted again once the traceback is text: an exception's message may hold a secret.
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, redact, renderer],
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
                    structlog.processors.format_exc_info, redact, renderer],
    ))
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_legation", False)]:
        root.removeHandler(old)
    handler._legation = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper()))
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
