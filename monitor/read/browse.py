"""``legation browse``'s SQL side: the archive in Datasette under /sql/, read-only, with labels,
search and facets, each post's row linking to its page in the reading room."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import sqlite3
from pathlib import Path
from typing import Any

from monitor.read.history import word_diff
from monitor.read.render import DIFF_MARKS, DIFF_TAGS, SNIPPET_TAGS, with_tags
from monitor.read.search import build_query
from storage.search import SEARCH_SQL, beyond_exact

TABLES: dict[str, dict[str, Any]] = {
    "post_feed": {"description": "Every post, newest version, with links to t.me and the titles of its pages.",
                  "facets": ["channel", "edited"], "sort_desc": "date"},
    "posts": {"description": "Posts as archived (newest version); see post_versions for every version.",
              "facets": ["channel_id", "edited", "service"], "sort_desc": "date",
              "columns": {"text": "Plain text", "html": "As Telegram rendered it", "media": "JSON list of media",
                          "deleted_at": "When legation confirmed the deletion"}},
    "post_search": {"description": "Full-text search over posts, newest first (key is time).",
                    "fts_table": "posts_fts", "fts_pk": "key", "sort_desc": "key"},
    "pages": {"description": "Release pages linked from posts: status, title, date, clean text.",
              "fts_table": "pages_fts", "facets": ["status", "host", "lang"], "sort_desc": "fetched_at"},
    "post_pages": {"description": "Each post next to each archived page it links to.", "facets": ["username"]},
    "release_versions": {"description": "Each release in each of its languages: archived, not translated, or waiting.",
                         "facets": ["site", "lang", "state"]},
    "edits": {"description": "Each edit next to the version before it.", "facets": ["channel"],
              "sort_desc": "seen_at"},
    "deletions": {"description": "Posts deleted after they were archived.", "facets": ["channel"],
                  "sort_desc": "deleted_at"},
    "alerts": {"description": "Keyword alerts: what matched, and whether it was sent.",
               "facets": ["rule", "kind"], "sort_desc": "created_at"},
    "links": {"description": "Every link of every post, normalised.", "facets": ["kind", "host"]},
}
SNIPPET_MARKS = ("char(2)", "char(3)")  # storage.posts.SNIPPET_OPEN/CLOSE, as SQL
MARKUP = SNIPPET_TAGS | DIFF_TAGS  # the marks of snippets and diffs, as the reading room draws them
BROWSE_LIMIT = 50


def _search_sql() -> str:
    """``legation search`` as one statement: exact matches, then other forms, newest first in each."""
    tier = SEARCH_SQL.format(open=SNIPPET_MARKS[0], close=SNIPPET_MARKS[1], limit=BROWSE_LIMIT, match="{match}")
    return (
        "SELECT channel, post_id, date, 'https://t.me/' || channel || '/' || post_id AS url, snippet, found\n"
        "FROM (SELECT *, 'as written' AS found FROM (" + tier.format(match="legation_exact(:q)") + ")\n"
        "      UNION ALL\n"
        "      SELECT *, 'other forms' AS found FROM (" + tier.format(match="legation_beyond_exact(:q)") + "))"
    )


POST_SQL = """
SELECT 'version ' || v.version AS item, v.seen_at AS at, NULL AS page,
       CASE WHEN prev.text IS NULL THEN v.text ELSE legation_word_diff(prev.text, v.text) END AS text
FROM post_versions v JOIN channels c ON c.id = v.channel_id
LEFT JOIN post_history prev
  ON prev.channel_id = v.channel_id AND prev.post_id = v.post_id AND prev.version = v.version - 1
WHERE c.username = :channel COLLATE NOCASE AND v.post_id = CAST(:post_id AS INTEGER)
UNION ALL
SELECT 'picture ' || (m.item + 1), m.fetched_at, NULL, f.path AS picture
FROM post_media m JOIN channels c ON c.id = m.channel_id JOIN media_files f ON f.sha256 = m.sha256
WHERE c.username = :channel COLLATE NOCASE AND m.post_id = CAST(:post_id AS INTEGER)
  AND m.role IN ('photo', 'thumbnail')
  AND m.version = (SELECT version FROM posts p WHERE p.channel_id = m.channel_id AND p.post_id = m.post_id)
UNION ALL
SELECT 'release page', g.fetched_at, g.url, coalesce(g.title || char(10) || char(10), '') || g.text
FROM links l JOIN channels c ON c.id = l.channel_id JOIN pages g ON g.url = l.url
WHERE c.username = :channel COLLATE NOCASE AND l.post_id = CAST(:post_id AS INTEGER) AND g.text IS NOT NULL
"""


def queries() -> dict[str, Any]:
    return {
        "search": {"title": "Search posts",
                   "description": "Plain words and \"phrases\", as `legation search`: each word also finds its "
                                  "other forms (хартия: хартии). Posts with the words as written come first. "
                                  "Dates like 2024-05-01; channel optional.",
                   "sql": _search_sql()},
        "post": {"title": "One post: every version, with word changes, and the release pages it links",
                 "sql": POST_SQL},
    }


SQL_BASE = "/sql/"  # where Datasette answers beside the reading room
READING_ROOM = (
    "<p><a href=\"/\">Back to the reading room</a>. For SQL: <a href=\"/sql/{db}/search\">search posts</a> · "
    "<a href=\"/sql/{db}/post_feed\">the feed</a> · "
    "<a href=\"/sql/{db}/pages\">release pages</a> · <a href=\"/sql/{db}/edits\">edits</a> · "
    "<a href=\"/sql/{db}/deletions\">deletions</a> · <a href=\"/sql/{db}/alerts\">alerts</a> · "
    "<a href=\"/sql/{db}/post\">one post with its versions</a>. The raw tables follow.</p>"
)
TELEGRAM_POST = re.compile(r"^https://t\.me/([A-Za-z][A-Za-z0-9_]{2,31})/(\d{1,18})$")


def register_functions(conn: sqlite3.Connection, languages: tuple[str, ...]) -> None:
    """The search language and the word diff as SQL functions, for Datasette's connections."""
    def exact(text: str | None) -> str:
        return build_query(text or "", languages).exact

    def beyond(text: str | None) -> str:
        query = build_query(text or "", languages)
        return beyond_exact(query.exact, query.wider) or '""'

    conn.create_function("legation_exact", 1, exact, deterministic=True)
    conn.create_function("legation_beyond_exact", 1, beyond, deterministic=True)
    conn.create_function("legation_word_diff", 2, lambda old, new: word_diff(old or "", new or "", DIFF_MARKS),
                         deterministic=True)


def render_picture(value: Any, size: str) -> Any:
    """A ``picture`` path (under [media] dir, served read-only at /media/) as an image."""
    if not isinstance(value, str) or not PICTURE_PATH.match(value):
        return None
    from markupsafe import Markup, escape

    return Markup(f'<a href="/media/{escape(value)}"><img src="/media/{escape(value)}" loading="lazy" '
                  f'style="max-width:{size};max-height:{size}" alt="picture"></a>')


def render_marked(value: Any) -> Any:
    """A snippet or a diff: escaped, with its marks as <mark>, <del> and <ins>; None for other cells."""
    if not isinstance(value, str) or not any(mark in value for mark in MARKUP):
        return None
    return with_tags(value, MARKUP, "<br>")


def render_post_link(value: Any, column: str) -> Any:
    """The t.me link of a post's row as a link to the post's page in the reading room, and to t.me."""
    if column != "url" or not isinstance(value, str) or (match := TELEGRAM_POST.match(value)) is None:
        return None
    from markupsafe import Markup, escape

    return Markup(f'<a href="/{escape(match[1])}/{escape(match[2])}">archived post</a> · '
                  f'<a href="{escape(value)}" rel="noreferrer">t.me</a>')


PLUGIN = """
import os
from datasette import hookimpl
from monitor.read.browse import register_functions, render_marked, render_picture, render_post_link

LANGUAGES = tuple(os.environ.get("LEGATION_SEARCH_LANGUAGES", "ru,en,de").split(","))


@hookimpl
def prepare_connection(conn):
    register_functions(conn, LANGUAGES)


@hookimpl
def render_cell(value, column, table):
    return (render_post_link(value, column) or render_picture(value, "96px" if table else "100%")
            or render_marked(value))
"""


PICTURE_PATH = re.compile(r"^[0-9a-f]{2}/[0-9a-f]{64}\.[a-z0-9]{2,5}$")  # media_files.path, nothing else
HIDDEN = ("page_versions", "page_attachments", "robots", "schema_migrations", "deletion_candidates", "runs")


def datasette_available() -> bool:
    return importlib.util.find_spec("datasette") is not None


def metadata(database: Path) -> dict[str, Any]:
    """Datasette metadata: labels, search and facets for the archive; raw blobs hidden."""
    tables: dict[str, Any] = {name: dict(spec) for name, spec in TABLES.items()}
    tables.update({name: {"hidden": True} for name in HIDDEN})
    return {
        "title": "legation archive",
        "description_html": "Telegram channels, their edits and deletions, and the release pages they link to. "
                            + READING_ROOM.format(db=database.stem),
        "databases": {database.stem: {"tables": tables, "queries": queries(),
                                      "description_html": READING_ROOM.format(db=database.stem)}},
    }


async def datasette_app(database: Path, metadata_file: Path, languages: tuple[str, ...]) -> Any:
    """Datasette serving ``database`` under /sql/, without writes (no write plugins, no SQL that
    writes), with legation's search and diff functions from the plugin next to the metadata file."""
    from datasette.app import Datasette

    os.environ["LEGATION_SEARCH_LANGUAGES"] = ",".join(languages)  # read by the plugin as it loads

    datasette = Datasette([str(database)], metadata=json.loads(metadata_file.read_text(encoding="utf-8")),
                          plugins_dir=str(metadata_file.parent / "plugins"),
                          settings={"base_url": SQL_BASE, "sql_time_limit_ms": 5000, "default_page_size": 50})
    await datasette.invoke_startup()
    return datasette.app()


def write_metadata(database: Path, target: Path) -> Path:
    """The metadata file, and the plugin beside it (``plugins/legation_browse.py``)."""
    target.write_text(json.dumps(metadata(database), ensure_ascii=False, indent=2), encoding="utf-8")
    (target.parent / "plugins").mkdir(exist_ok=True)
    (target.parent / "plugins" / "legation_browse.py").write_text(PLUGIN, encoding="utf-8")
    return target
