"""A release in its languages: found from the page's own links and by mid.ru's same-id
convention, archived through the one queue, grouped, searched, exported, alerted on once."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta

from conftest import FAST_PAGES
from helpers import rows
from tmeserver import FIXTURES

from monitor.daemon.service import archive_channels
from monitor.pages.extract import translation_links

NUMBER = "1944000"
PATH = "/{lang}/foreign_policy/news/" + NUMBER + "/"
URL = "https://mid.ru" + PATH
# The ru page's language switcher links en and de; fr exists only by the same id; es is missing.
TITLES = {
    "ru": "Заявление МИД России о Евразийской хартии",
    "en": "Statement by the Russian Foreign Ministry on the Eurasian Charter",
    "de": "Erklärung des Außenministeriums Russlands zur Eurasischen Charta",
    "fr": "Déclaration du Ministère russe des Affaires étrangères sur la Charte eurasienne",
}
BODIES = {
    "ru": "Министр С.В.Лавров подчеркнул, что Хартия открыта для всех государств. Пункт о диверсификации.",
    "en": "Minister Sergey Lavrov stressed that the Charter is open to all states.",
    "de": "Minister Sergej Lawrow betonte, dass die Charta allen Staaten offensteht. Die Vielpoligkeit wächst.",
    "fr": "Le ministre Sergueï Lavrov a souligné que la Charte est ouverte à tous les États.",
}
ALERTS = """
[alerts]
[[alerts.rules]]
name = "de"
keywords = ["Vielpoligkeit"]
scope = ["pages"]
[[alerts.rules]]
name = "lavrov"
keywords = ["Lavrov"]
scope = ["pages"]
"""
PAGES = FAST_PAGES.replace("translations = false", 'translations = true\nlanguages = { "mid.ru" = ["ru", "en", "de", "fr", "es"] }')


def linked_from_a_post(tme, make_config, extra: str = "", pages: str = PAGES):
    """MFARussia's post 1 links the Russian version (a post of two hours ago: news, alerts fire)."""
    channel = tme.channel("MFARussia")
    channel.add(1, text=f'Заявление <a href="{URL.format(lang="ru")}">здесь</a>',
                start=datetime.now(UTC) - timedelta(hours=2))
    return make_config("MFARussia", extra=extra, pages=pages)


def release_page(lang: str, switcher: tuple[str, ...] = ()) -> str:
    links = " ".join(f'<a href="{PATH.format(lang=other)}">{other.upper()}</a>' for other in switcher)
    return f"""<!DOCTYPE html><html lang="{lang}"><head><title>{TITLES[lang]}</title></head><body>
<header><nav class="lang-switcher">{links}</nav><a href="/{lang}/">Home</a></header>
<div class="photo-content"><h1 class="photo-content__title">{TITLES[lang]}</h1>
<div class="photo-content__date">14.05.2024 16:10</div><p class="article-line__note">936-14-05-2024</p>
<div class="text article-content"><p>{BODIES[lang]}</p>
<p><a href="/{lang}/foreign_policy/news/1900000/">previous</a></p></div></div></body></html>"""


def serve_release(tme) -> dict[str, int]:
    """The release on the loopback mid.ru; the English version is walled at its first request."""
    site = tme.site("mid.ru")
    site.page(PATH.format(lang="ru"), release_page("ru", switcher=("en", "de")))
    site.page(PATH.format(lang="de"), release_page("de", switcher=("ru", "en")))
    site.page(PATH.format(lang="fr"), release_page("fr"))
    asked = {"en": 0}
    wall = (FIXTURES / "sites" / "challenge_f5.html").read_bytes()

    def english(method, path, headers, body):
        if path != PATH.format(lang="en"):
            return None
        asked["en"] += 1
        page = wall if asked["en"] == 1 else release_page("en", switcher=("ru", "de")).encode()
        return 200, {"Content-Type": "text/html; charset=utf-8"}, page

    site.dynamic = english
    return asked


def versions(config) -> list[tuple]:
    return rows(config.database, "SELECT site, number, lang, state, found_by FROM release_versions ORDER BY lang")


async def test_a_release_is_archived_in_every_language_it_exists_in(tme, make_config):
    asked = serve_release(tme)
    config = linked_from_a_post(tme, make_config, extra=ALERTS)

    report = await archive_channels(config, ["MFARussia"], mode="sync")

    # One run: the linked page, then the versions it led to; the walled one waits for its retry.
    assert report.pages.fetched == {"ok": 3, "blocked": 1, "gone": 1}
    assert versions(config) == [
        ("mid.ru", NUMBER, "de", "ok", "translation"),
        ("mid.ru", NUMBER, "en", "blocked", "translation"),
        ("mid.ru", NUMBER, "es", "not translated", "translation"),
        ("mid.ru", NUMBER, "fr", "ok", "translation"),
        ("mid.ru", NUMBER, "ru", "ok", "post"),
    ]
    assert rows(config.database, "SELECT count(*) FROM releases") == [(1,)]
    [(error,)] = rows(config.database, "SELECT error FROM pages WHERE url = ?", URL.format(lang="es"))
    assert error == "not translated (HTTP 404)"
    # status lists failures to look at: a version that does not exist is not one
    assert rows(config.database, "SELECT count(*) FROM pages WHERE status = 'failed'") == [(0,)]

    time.sleep(1.1)  # retry_backoff is 1 s in tests
    report = await archive_channels(config, ["MFARussia"], mode="sync")
    assert report.pages.fetched == {"ok": 1}
    assert [v[3] for v in versions(config)] == ["ok", "ok", "not translated", "ok", "ok"]
    assert asked["en"] == 2
    # each existing version fetched once (the English twice: the wall, then the page); the
    # missing one once; the section's home and the previous statement never
    fetched = [p for p in tme.site_requests("mid.ru") if p != "/robots.txt"]
    assert sorted(fetched) == sorted([PATH.format(lang=lang) for lang in ("ru", "en", "de", "fr", "es", "en")])

    # The German rule on the German version only; the Lavrov rule (en and fr) once for the release.
    assert rows(config.database, "SELECT rule, page_url FROM alerts ORDER BY rule") == [
        ("de", URL.format(lang="de")), ("lavrov", URL.format(lang="fr"))]


async def test_a_releases_other_languages_are_searched_and_exported_with_its_post(tme, make_config, tmp_path):
    from click.testing import CliRunner

    from monitor.cli.main import cli

    serve_release(tme)
    config = linked_from_a_post(tme, make_config)
    await archive_channels(config, ["MFARussia"], mode="sync")

    def run(*args: str):
        return asyncio.to_thread(CliRunner().invoke, cli, ["-c", str(config.source), *args], catch_exceptions=False)

    [hit] = json.loads((await run("search", "Vielpoligkeit", "--json")).stdout)
    assert (hit["kind"], hit["url"]) == ("page", URL.format(lang="de"))
    assert hit["linked_by"] == [f"{tme.url}/MFARussia/1"]  # the post links the Russian version
    channel_hits = json.loads((await run("search", "Vielpoligkeit", "--channel", "MFARussia", "--json")).stdout)
    assert [h["url"] for h in channel_hits] == [URL.format(lang="de")]

    exported = tmp_path / "posts.jsonl"
    assert (await run("export", "--with-pages", "--query", "Vielpoligkeit", "-o", str(exported))).exit_code == 0
    [post] = [json.loads(line) for line in exported.read_text().splitlines()]
    [page] = post["pages"]
    assert page["url"] == URL.format(lang="ru")
    assert {t["lang"]: t["state"] for t in page["translations"]} == {
        "de": "ok", "en": "blocked", "es": "not translated", "fr": "ok"}
    german = next(t for t in page["translations"] if t["lang"] == "de")
    assert german["title"] == TITLES["de"] and "Vielpoligkeit" in german["text"]


async def test_translations_off_archives_only_the_linked_page(tme, make_config):
    serve_release(tme)
    config = linked_from_a_post(tme, make_config, pages=FAST_PAGES)

    report = await archive_channels(config, ["MFARussia"], mode="sync")

    assert report.pages.fetched == {"ok": 1}
    assert versions(config) == [("mid.ru", NUMBER, "ru", "ok", "post")]


def test_translation_links_from_hreflang_and_a_language_switcher():
    page = """<html><head>
    <link rel="alternate" hreflang="en-GB" href="https://eng.belta.by/politics/view/x-1/">
    <link rel="alternate" hreflang="x-default" href="https://belta.by/">
    <link rel="stylesheet" hreflang="fr" href="/style.css">
    </head><body>
    <a href="/de/foreign_policy/news/1944000/#top">DE</a>
    <a href="https://www.mid.ru/es/foreign_policy/news/1944000/">ES</a>
    <a href="/de/foreign_policy/news/1900000/">other release</a>
    <a href="/ru/foreign_policy/news/1944000/">this page</a>
    <a href="https://evil.example/fr/foreign_policy/news/1944000/">elsewhere</a>
    <a hreflang="zh" href="/zh/foreign_policy/news/1944000/">中文</a>
    </body></html>"""
    assert translation_links(page, "https://mid.ru/ru/foreign_policy/news/1944000/") == (
        ("de", "https://mid.ru/de/foreign_policy/news/1944000/"),
        ("en", "https://eng.belta.by/politics/view/x-1/"),
        ("es", "https://www.mid.ru/es/foreign_policy/news/1944000/"),
        ("zh", "https://mid.ru/zh/foreign_policy/news/1944000/"),
    )
