"""One notification sent through Apprise in a process of its own: ``python -m monitor.alerts.send``.

Apprise's services block (requests, smtplib) on threads of Apprise's own pool, which the
interpreter waits for at exit; a service that trickles its answer keeps every read alive.
A child process is the one thing that can be stopped at a deadline: the daemon kills it,
and nothing of the send outlives it. The URLs (tokens included) come on standard input,
never on the command line; the answer is one JSON object on standard output, with
Apprise's log records, which the daemon logs through its own logger (secrets masked).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Sequence
from typing import Any


def notify(urls: Sequence[str], title: str, body: str, level: int = logging.WARNING) -> tuple[str | None, list]:
    """Send; (None on success, else what the services said; Apprise's log records at ``level``
    and above as ``[level, message]``, for the daemon to log through its own redacting logger)."""
    import apprise

    records: list[list[Any]] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append([record.levelno, record.getMessage()])

    logger = logging.getLogger("apprise")
    logger.setLevel(level)
    logger.addHandler(Collect(level))
    notifier = apprise.Apprise()
    for url in urls:
        if not notifier.add(url):
            return "invalid notification URL (see the Apprise documentation)", records
    if notifier.notify(body=body, title=title):
        return None, records
    said = [message for levelno, message in records if levelno >= logging.WARNING]
    return "; ".join(said) or "notification failed", records


def main() -> None:
    message = json.load(sys.stdin)
    records: list = []
    try:
        error, records = notify(message["urls"], message["title"], message["body"], message.get("level", 30))
    except Exception as exc:  # a service's own failure, whatever it raised
        error = f"{type(exc).__name__}: {exc}"
    json.dump({"error": error, "log": records}, sys.stdout)


if __name__ == "__main__":
    main()
