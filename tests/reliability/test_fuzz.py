"""Hostile and malformed input: parsers, link extraction, the URL guard and search never crash."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tmeserver import FIXTURES, FakeChannel

from monitor.errors import UnsafeURL
from monitor.net.guard import check_url
from monitor.pages.extract import extract
from monitor.read.search import build_query
from monitor.sources.links import find_urls, make_links, normalise_url
from monitor.sources.page import ChannelPage
from monitor.sources.webpreview import parse_channel_page, parse_embed
from storage.channels import ensure_channel
from storage.db import open_archive, transaction
from storage.errors import SearchQueryError
from storage.models import Post
from storage.posts import save_posts
from storage.search import search_posts

pytestmark = pytest.mark.reliability
HANG = 5.0  # seconds: far beyond any real page (milliseconds); catches a hang, not slowness
EXAMPLES = 300

channel = FakeChannel("fuzz", page_size=5)
for post_id in range(1, 6):
    channel.add(post_id, text=f'Post {post_id} <a href="https://mid.ru/x/{post_id}/?a=1&amp;amp;b=2" '
                              f'onclick="return confirm(1)">link</a> <b>bold</b> https://t.me/x/{post_id}')
PAGES = [channel.render(None), (FIXTURES / "mfarussia_page.html").read_text(encoding="utf-8")]
RELEASES = [(name, (FIXTURES / "sites" / f"{file}.html").read_text(encoding="utf-8"))
            for name, file in (("midru", "midru_current"), ("midru", "midru_legacy"), ("belta", "belta_article"))]
NOISE = st.sampled_from(["<", ">", "</div>", "<div class=\"tgme_widget_message_text js-message_text\">", "\"", "&",
                         "&amp;amp;", "<br>", "<a href=\"javascript:alert(1)\">", "data-post=\"fuzz/\"",
                         "\x00", "\ud7ff", "🎲", "<time datetime=\"9999-99-99\">", "<!--", "]]>", "<script>"])


@st.composite
def mutated(draw, documents: list[str]) -> str:
    text = draw(st.sampled_from(documents))
    for _ in range(draw(st.integers(1, 8))):
        at = draw(st.integers(0, len(text)))
        choice = draw(st.integers(0, 2))
        if choice == 0:
            end = draw(st.integers(at, min(len(text), at + 400)))
            text = text[:at] + text[end:]
        elif choice == 1:
            text = text[:at] + draw(NOISE) + text[at:]
        else:
            text = text[:at] + draw(st.text(max_size=40)) + text[at:]
    return text


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated(PAGES))
def test_channel_pages_never_crash_or_hang(html):
    started = time.perf_counter()
    page = parse_channel_page(html, "fuzz")
    parse_embed(html, 1)
    assert isinstance(page, ChannelPage) and time.perf_counter() - started < HANG
    for post in page.posts:
        for link in post.links:
            assert link.url.startswith(("http://", "https://"))


@settings(max_examples=EXAMPLES // 2, deadline=None)
@given(st.sampled_from(RELEASES), st.data())
def test_release_pages_never_crash(release, data):
    name, html = release
    extracted = extract(name, data.draw(mutated([html])), "https://mid.ru/ru/x/")
    assert extracted.text is None or isinstance(extracted.text, str)


@settings(max_examples=EXAMPLES * 2, deadline=None)
@given(st.text(max_size=300))
def test_link_extraction_never_crashes(text):
    urls = find_urls(text)
    links = make_links([(u, "text") for u in urls] + [(text, "hidden")])
    assert all(link.url == normalise_url(link.url) for link in links)


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.one_of(st.text(max_size=80), st.from_regex(r"(https?|ftp|file|javascript|data)://[^\s]{0,60}",
                                                       fullmatch=True)))
def test_the_url_guard_refuses_or_passes_but_never_crashes(url):
    try:
        asyncio.run(check_url(url, proxied=True))  # proxied: no DNS, so nothing leaves this machine
    except UnsafeURL:
        return
    assert url.lower().startswith(("http://", "https://"))


@pytest.fixture(scope="module")
def searchable(tmp_path_factory):
    path = tmp_path_factory.mktemp("fuzz") / "search.sqlite3"

    async def build() -> None:
        async with open_archive(path) as conn, transaction(conn):
            channel_id = await ensure_channel(conn, "fuzz", "2024-01-01T00:00:00Z")
            await save_posts(conn, channel_id, [Post(post_id=i, date="2024-01-01T00:00:00Z", text=f"Лавров {i}")
                                                for i in range(1, 20)], "2024-01-01T00:00:00Z")

    asyncio.run(build())
    return path


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(st.text(max_size=60), st.lists(st.sampled_from(
    ['"', "AND", "OR", "NOT", "(", ")", "*", "^", "NEAR", "Лавров", ":", "-", "+", "{", "}", "text:"]),
    max_size=8).map(" ".join)))
def test_search_strings_never_crash(searchable, query):
    async def run() -> None:
        async with open_archive(searchable, create=False) as conn:
            plain = build_query(query)  # the default language: never an error, whatever is typed
            await search_posts(conn, plain.exact, wider=plain.wider)
            raw = build_query(query, raw=True)
            with contextlib.suppress(SearchQueryError):  # a clear error is the right answer to bad FTS5 syntax
                await search_posts(conn, raw.exact)

    asyncio.run(run())
