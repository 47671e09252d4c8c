"""Where each thing of the reading room lives: one scheme for the server and for the static export.

The server's URLs mirror t.me (``/<channel>``, ``/<channel>/<post_id>``) so that a reader can
swap the host; the static export writes the same pages as files (``<channel>/<post_id>.html``)
linked relatively, so that it opens from ``file://`` and anywhere it is copied to.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import quote, urlencode

LISTS = ("edits", "deletions", "pages", "alerts")


@dataclass(frozen=True, slots=True)
class Paths:
    """Links from one page: ``static`` for the export (relative to the page at ``here``)."""

    static: bool = False
    here: str = "index.html"  # the page's own file, in the static export
    sql_served: bool = True  # Datasette under /sql/ (an SQLite archive, the browse extra installed)

    def _to(self, server: str, file: str) -> str:
        if not self.static:
            return server
        depth = len(PurePosixPath(self.here).parts) - 1
        return "../" * depth + file

    def home(self) -> str:
        return self._to("/", "index.html")

    def channel(self, name: str, before: int | None = None) -> str:
        if before is None:
            return self._to(f"/{quote(name)}", f"{name}/index.html")
        return self._to(f"/{quote(name)}?before={before}", f"{name}/before-{before}.html")

    def post(self, name: str, post_id: int) -> str:
        return self._to(f"/{quote(name)}/{post_id}", f"{name}/{post_id}.html")

    def citation(self, name: str, post_id: int) -> str | None:
        """The post's citation package (WACZ), made when asked: the server's only."""
        return None if self.static else f"/{quote(name)}/{post_id}.wacz"

    def page(self, url: str) -> str:
        """A release page: by its URL on the server, by a digest of it in the export."""
        return self._to("/page?" + urlencode({"url": url}), f"pages/{page_file(url)}")

    def attachment(self, page_url: str, url: str, sha256: str | None) -> str:
        name = PurePosixPath(url.split("?", 1)[0]).suffix.lower()[:6]
        return self._to("/attachment?" + urlencode({"page": page_url, "url": url}), f"files/{sha256}{name}")

    def media(self, path: str) -> str:
        return self._to(f"/media/{path}", f"media/{path}")

    def list(self, name: str, status: str | None = None) -> str:
        if status:
            return self._to(f"/{name}?" + urlencode({"status": status}), f"{name}-{status}.html")
        return self._to(f"/{name}", f"{name}.html")

    def feed(self, name: str) -> str:
        """``MFARussia``, ``edits``, ``deletions``, ``pages`` or ``alerts/<rule>``, as Atom."""
        return self._to(f"/{quote(name)}.atom", f"{name}.atom")

    def css(self) -> str:
        return self._to("/-/room.css", "room.css")

    def search(self) -> str | None:
        """The search form: the server's only (a static export has no engine to ask)."""
        return None if self.static else "/search"

    def sql(self) -> str | None:
        return None if self.static or not self.sql_served else "/sql/"


def page_file(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:24] + ".html"
