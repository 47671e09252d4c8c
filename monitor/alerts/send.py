"""One notification sent through Apprise in a process of its own: ``python -m monitor.alerts.send``.

Apprise's services block (requests, smtplib) on threads of Apprise's own pool, which the
interpreter waits for at exit; a service that trickles its answer keeps every read alive.
A child process is the one thing that can be stopped at a deadline: the daemon kills it,
and nothing of the send outlives it. The URLs (tokens included) come on standard input,
never on the command line; the answer is one JSON object on standard output.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence


def notify(urls: Sequence[str], title: str, body: str) -> str | None:
    """Send; None on success, else what the services said."""
    import apprise

    notifier = apprise.Apprise()
    for url in urls:
        if not notifier.add(url):
            return "invalid notification URL (see the Apprise documentation)"
    with apprise.LogCapture(level=apprise.logging.WARNING) as captured:
        result = notifier.notify(body=body, title=title)
    if result:
        return None
    lines = [line.split(" - ", 2)[-1] for line in captured.getvalue().splitlines() if line.strip()]
    return "; ".join(lines) or "notification failed"


def main() -> None:
    message = json.load(sys.stdin)
    try:
        error = notify(message["urls"], message["title"], message["body"])
    except Exception as exc:  # a service's own failure, whatever it raised
        error = f"{type(exc).__name__}: {exc}"
    json.dump({"error": error}, sys.stdout)


if __name__ == "__main__":
    main()
