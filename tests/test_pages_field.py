"""Release pages as they are in the field: every mid.ru layout, walls that answer 200, pages with
no text, BelTA's dates and bodies, the generic extractor after a plain install, and certificates."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import connect_archive, rows
from tmeserver import FIXTURES

from monitor.cli.main import cli
from monitor.daemon.service import archive_channels
from monitor.pages.extract import challenge_marker, extract, extract_with_fallback

SITES = FIXTURES / "sites"
REAL = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "sites" / "real"


def fixture(name: str) -> str:
    return (SITES / name).read_text(encoding="utf-8")


@pytest.fixture
def real() -> dict[str, dict]:
    """Pages captured by others, with what a reader sees on them (../shared/fixtures/sites/real)."""
    if not (REAL / "truth.json").is_file():
        pytest.skip(f"captured release pages not found at {REAL}")
    return {page["file"].removeprefix("real/"): page for page in json.loads((REAL / "truth.json").read_text())["pages"]}


def test_midru_older_layout_takes_the_articles_heading_and_two_digit_years():
    page = extract("midru", fixture("midru_older.html"), "https://mid.ru/ru/foreign_policy/news/2273012/")
    assert (page.title, page.published_at, page.doc_number, page.lang) == (
        "Ответ официального представителя МИД России на вопрос СМИ", "2016-05-14T13:10:00Z", "858-14-05-2016", "ru")
    assert page.text == ("Вопрос: Как в Москве оценивают итоги встречи?\n\n"
                         "Ответ: Мы внимательно изучили итоги и сделаем выводы.")


def test_midru_announcement_layout():
    page = extract("midru", fixture("midru_announcement.html"), "https://mid.ru/ru/press_service/announcements/1001/")
    assert (page.title, page.published_at, page.doc_number) == (
        "О предстоящих переговорах Министра иностранных дел России С.В.Лаврова", "2024-05-20T07:00:00Z",
        "1001-20-05-2024")
    assert page.text == ("22 мая состоятся переговоры Министра иностранных дел России С.В.Лаврова с коллегой.\n\n"
                         "Планируется обсудить Евразийскую хартию.")


def test_russian_briefing_contents_and_back_links_are_not_text():
    page = extract("midru", fixture("midru_briefing_ru.html"), "https://mid.ru/ru/press_service/spokesman/briefings/1/")
    assert page.text == ("О графике Министра иностранных дел России С.В.Лаврова\n\n"
                         "8 ноября С.В.Лавров проведет переговоры.\n\n"
                         "О Евразийской хартии\n\nПроект хартии направлен партнерам.")


def test_english_briefing_contents_as_paragraphs_are_not_text():
    page = extract("midru", fixture("midru_briefing_en_paragraphs.html"),
                   "https://mid.ru/en/press_service/spokesman/briefings/2/")
    assert page.text == ("Sergey Lavrov's schedule\n\nOn May 22, Sergey Lavrov will hold talks.\n\n"
                         "Answers to media questions\n\nQuestion: What about the charter?")


def test_belta_takes_the_visible_minsk_time_keeps_breaks_and_knows_its_language():
    page = extract("belta", fixture("belta_br.html"), "https://eng.belta.by/politics/view/lukashenko-1-2024/")
    assert (page.title, page.published_at, page.lang) == ("Lukashenko meets Lavrov", "2024-05-14T13:10:00Z", "en")
    assert page.text == ("MINSK, 14 May (BelTA) - The talks began in the morning.\n\n"
                         "The sides discussed the common market.\n\n\"The main thing is trust,\" the president said.")


@pytest.mark.parametrize(("host", "lang"), [("eng.belta.by", "en"), ("belta.by", "ru"), ("deu.belta.by", "de")])
def test_belta_language_from_the_host(host, lang):
    assert extract("belta", fixture("belta_br.html"), f"https://{host}/politics/view/x-1-2024/").lang == lang


def test_a_site_layout_that_finds_nothing_falls_back_to_the_generic_extractor():
    html = fixture("generic_article.html")
    name, page = extract_with_fallback("midru", html, "https://mid.ru/ru/some/new/layout/")
    assert name == "generic"
    assert page.title == "Embassy statement on consular services"
    assert page.text is not None and page.text.startswith("The Embassy informs that consular services")


@pytest.mark.parametrize("html", [
    '<html><head><title>Just a moment...</title></head><body><div id="cf-wrapper"></div></body></html>',
    '<html><head><title>DDoS-Guard</title></head><body>Checking your browser</body></html>',
    '<html><head><script src="/__qrator/qauth_utm_v2.js"></script></head><body></body></html>',
    '<html><head><title>Проверка</title><script src="https://ccc.variti.net/x.js"></script></head></html>',
    "<html><head><title>Access Denied</title></head><body>You don't have permission to access this server.</body></html>",
    "<html><head><title>Request Rejected</title></head><body>The requested URL was rejected. Please consult with "
    "your administrator.<br><br>Your support ID is: 1</body></html>",
])
def test_walls_are_recognised(html):
    assert challenge_marker(html) is not None


def test_real_pages_as_a_reader_sees_them(real):
    for name, truth in real.items():
        html = (REAL / name).read_text(encoding="utf-8")
        if truth.get("wall"):
            assert challenge_marker(html), name
            continue
        assert challenge_marker(html) is None, name
        host = truth["url"].split("/")[2]
        extractor = "midru" if host.endswith("mid.ru") else "belta" if host.endswith("belta.by") else "generic"
        _, page = extract_with_fallback(extractor, html, truth["url"])
        for key in ("title", "published_at", "lang", "doc_number"):
            if key in truth:  # a bare trimmed page too: title from its first line, language from its text
                assert getattr(page, key) == truth[key], (name, key)
        if truth.get("paragraphs") and extractor == "generic":  # a layout it does not know: all, in order
            found = [(page.text or "").find(paragraph) for paragraph in truth["paragraphs"]]
            assert -1 not in found and found == sorted(found), name
            assert found[0] == 0, (name, "the title or date repeated above the text")
        elif truth.get("paragraphs"):
            assert page.text == "\n\n".join(truth["paragraphs"]), name
        elif "paragraphs" in truth:
            assert not page.text, name
        for needle in truth.get("text_contains", []):
            assert needle in (page.text or ""), (name, needle)
        for needle in truth.get("text_not_contains", []):
            assert needle not in (page.text or ""), (name, needle)


async def test_a_plain_install_extracts_other_sites_with_trafilatura(tme, linking):
    tme.site("embassy.example").page("/news/statement/", fixture("generic_article.html"))
    _, config = linking("https://embassy.example/news/statement/")

    report = await archive_channels(config, ["MFARussia"], mode="sync")

    assert report.pages.fetched == {"ok": 1}
    [(status, extractor, title, published, lang, text)] = rows(
        config.database, "SELECT status, extractor, title, published_at, lang, text FROM pages")
    assert (status, extractor, title, published, lang) == (
        "ok", "generic", "Embassy statement on consular services", "2024-05-15", "en")
    assert text.startswith("The Embassy informs that consular services will be provided by appointment only")
    assert "Copyright" not in text and "Contacts" not in text


async def test_a_page_without_text_is_failed_and_retried_never_an_empty_ok(tme, linking):
    site = tme.site("mid.ru")
    site.page("/stub/", '<html><head><title></title><meta http-equiv="refresh" content="1; url=/home"></head>'
                        "<body></body></html>")
    _, config = linking("https://mid.ru/stub/")

    report = await archive_channels(config, ["MFARussia"], mode="sync")

    assert report.pages.fetched == {"failed": 1}
    [(status, error, retry_at, versions)] = rows(
        config.database, "SELECT status, error, next_attempt_at, version FROM pages")
    assert (status, versions) == ("failed", 0)
    assert error.startswith("no article text found")
    assert retry_at is not None
    assert rows(config.database, "SELECT count(*) FROM page_versions") == [(0,)]


async def test_the_f5_block_page_answering_200_is_blocked(tme, linking, real):
    tme.site("mid.ru").page("/ru/foreign_policy/news/1944000/", (REAL / "f5_asm_request_rejected.html").read_bytes())
    _, config = linking("https://mid.ru/ru/foreign_policy/news/1944000/")

    report = await archive_channels(config, ["MFARussia"], mode="sync")

    assert report.pages.fetched == {"blocked": 1}
    assert rows(config.database, "SELECT status, error, version FROM pages") == [
        ("blocked", "anti-bot page: F5 block page (Request Rejected)", 0)]


async def test_an_untrusted_certificate_fails_at_once_and_says_how_to_fix_it(tme, linking):
    site = tme.site("mid.ru")
    site.page("/ru/a/", fixture("midru_current.html"))
    site.page("/ru/b/", fixture("midru_current.html"))
    _, config = linking("https://mid.ru/ru/a/", "https://mid.ru/ru/b/")
    config = replace(config, network=replace(config.network, ca_bundle=None))  # the test CA is not trusted

    report = await archive_channels(config, ["MFARussia"], mode="sync")

    assert report.pages.fetched == {"failed": 1}  # the second page of the host waits: no hammering
    [(status, error, attempts_left)] = rows(
        config.database, "SELECT status, error, next_attempt_at > datetime('now', '+12 hours') FROM pages "
                         "WHERE status != 'pending'")
    assert status == "failed" and attempts_left == 1
    assert error.startswith("certificate of mid.ru not trusted (") and "set [network] ca_bundle" in error
    assert tme.site_requests("mid.ru") == []  # not one request got through; none was retried
    with connect_archive(config.database) as conn:
        assert conn.execute("SELECT count(*) FROM pages WHERE status = 'pending'").fetchone() == (1,)

    shown = await asyncio.to_thread(CliRunner().invoke, cli, ["-c", str(config.source), "status"])
    [line] = [line for line in shown.stdout.splitlines() if line.startswith("pages failed on mid.ru")]
    assert line == f"pages failed on mid.ru (1): {error}"


async def test_a_page_that_breaks_processing_is_its_own_failure_and_the_queue_goes_on(tme, linking):
    broken = fixture("midru_current.html").replace('href="/upload/iblock/5a1/charter_ru.pdf"', 'href="http://[oops/x.pdf"')
    site = tme.site("mid.ru")
    site.page("/ru/1/", broken)
    site.page("/ru/2/", fixture("midru_current.html"))
    _, config = linking("https://mid.ru/ru/1/", "https://mid.ru/ru/2/")

    report = await archive_channels(config, ["MFARussia"], mode="sync")

    assert report.pages.fetched == {"failed": 1, "ok": 1}
    [(status, error, later)] = rows(config.database, "SELECT status, error, next_attempt_at > fetched_at FROM pages "
                                                     "WHERE url = 'https://mid.ru/ru/1/'")
    assert (status, error, later) == ("failed", "could not process the page: ValueError: Invalid IPv6 URL", 1)
    assert rows(config.database, "SELECT status FROM pages WHERE url = 'https://mid.ru/ru/2/'") == [("ok",)]


async def test_a_release_page_with_an_unknown_charset_is_archived_as_utf8(tme, linking):
    tme.site("mid.ru").page("/ru/1/", fixture("midru_current.html"), content_type="text/html; charset=x-bogus")
    _, config = linking("https://mid.ru/ru/1/")

    report = await archive_channels(config, ["MFARussia"], mode="sync")

    assert report.pages.fetched == {"ok": 1}
    assert rows(config.database, "SELECT title FROM pages") == [
        ("Заявление МИД России в связи с годовщиной Евразийской хартии",)]


async def test_a_failing_page_waits_longer_after_each_failure(linking, tme):
    from datetime import datetime

    from helpers import rows

    from monitor.daemon.service import archive_channels

    tme.site("mid.ru").page("/ru/1/", "<html><body>Busy</body></html>", status=503)
    _, config = linking("https://mid.ru/ru/1/")
    waits = []
    for _ in range(3):
        await archive_channels(config, ["MFARussia"], mode="sync")
        [(fetched, retry)] = rows(config.database, "SELECT fetched_at, next_attempt_at FROM pages")
        waits.append((datetime.fromisoformat(retry) - datetime.fromisoformat(fetched)).total_seconds())
        with connect_archive(config.database) as conn:  # due again at once
            conn.execute("UPDATE pages SET next_attempt_at = '2000-01-01T00:00:00Z'")
    # retry_backoff 1 s, doubling; both times are stored to the second, so each wait may read a second short
    assert all(expected - 1 <= wait <= expected for wait, expected in zip(waits, [1, 2, 4], strict=True)), waits
    assert waits[2] >= 3 and waits[2] > waits[0]


def test_a_stop_list_reads_one_person_a_line_with_the_pages_numbers(real):
    html = (REAL / "midru_maps_us_stoplist_trimmed.html").read_text(encoding="utf-8")
    _, page = extract_with_fallback("midru", html, "https://mid.ru/ru/maps/us/1814243/")
    lines = (page.text or "").split("\n\n")
    assert lines[:3] == ["А", "Б", "1. Ральф АБРАХАМ (Ralph Lee Abraham Jr.) – бывший член Палаты представителей "
                                   "Конгресса США от Республиканской партии (шт. Луизиана)"]
    assert any(line.startswith("42. Джон БАРРА") and line.endswith(  # the page spells it with a Latin C
        "(John Anthony Barrasso) – член Сената Конгресса США от Республиканской партии (шт. Вайоминг)") for line in lines)
    assert not any(line.startswith("|") for line in lines)
