"""Release pages end to end: posts link to mid.ru and BelTA, served over https through the proxy."""

from __future__ import annotations

import asyncio
import hashlib
import json
import zlib
from dataclasses import replace

import pytest
from helpers import connect_archive, pages_matching, rows
from tmeserver import FIXTURES

from monitor.daemon.service import archive_channels, pages_client
from monitor.errors import UnsafeURL
from monitor.net.guard import check_url

SITES = FIXTURES / "sites"
CURRENT = "https://mid.ru/ru/foreign_policy/news/1944000/"
BRIEFING = "https://mid.ru/en/press_service/spokesman/briefings/1984512/"
LEGACY = "https://www.mid.ru/en/foreign_policy/news/-/asset_publisher/cKNonkJE02Bw/content/id/2273012"
BELTA = "https://eng.belta.by/politics/view/lukashenko-lavrov-164000-2024/"


def fixture(name: str) -> bytes:
    return (SITES / name).read_bytes()


async def test_linked_release_pages_are_archived_clean(tme, linking):
    tme.site("mid.ru").page("/ru/foreign_policy/news/1944000/", fixture("midru_current.html"))
    tme.site("mid.ru").page("/upload/iblock/5a1/charter_ru.pdf", b"%PDF-1.4 charter", content_type="application/pdf")
    tme.site("mid.ru").page("/en/press_service/spokesman/briefings/1984512/", fixture("midru_briefing.html"))
    tme.site("www.mid.ru").page(LEGACY.split("www.mid.ru")[1], fixture("midru_legacy.html"))
    tme.site("eng.belta.by").page("/politics/view/lukashenko-lavrov-164000-2024/", fixture("belta_article.html"))
    _, config = linking(CURRENT, BRIEFING, LEGACY, BELTA)

    report = await archive_channels(config, ["MFARussia"], mode="sync")

    assert report.pages.fetched == {"ok": 4}
    assert rows(config.database, "SELECT url, status, title, published_at, lang, doc_number, extractor, version "
                                 "FROM pages ORDER BY url") == [
        (BELTA, "ok", "Lukashenko, Lavrov discuss Eurasian security charter", "2024-05-14T13:10:00Z", "en", None,
         "belta", 1),
        (BRIEFING, "ok", "Briefing by Foreign Ministry Spokeswoman Maria Zakharova, Moscow, November 6, 2024",
         "2024-11-06T11:30:00Z", "en", None, "midru", 1),
        (CURRENT, "ok", "Заявление МИД России в связи с годовщиной Евразийской хартии", "2024-05-14T13:10:00Z",
         "ru", "936-14-05-2024", "midru", 1),
        (LEGACY, "ok", "Press release on Sergey Lavrov's talks with Minister of Foreign Affairs of Belarus "
                       "Vladimir Makei", "2016-05-14", "en", None, "midru", 1),
    ]
    [(text,)] = rows(config.database, "SELECT text FROM pages WHERE url = ?", BELTA)
    assert text == ("MINSK, 14 May (BelTA) - Belarusian President Aleksandr Lukashenko met with Russian Foreign "
                    "Minister Sergei Lavrov.\n\nThe parties discussed the draft Eurasian charter of diversity and "
                    "multipolarity.")
    [(briefing,)] = rows(config.database, "SELECT text FROM pages WHERE url = ?", BRIEFING)
    assert briefing.startswith("Sergey Lavrov's schedule\n\nOn November 8") and "Table of contents" not in briefing
    [(raw, sha, size)] = rows(config.database, "SELECT raw, sha256, size FROM page_versions WHERE url = ?", CURRENT)
    assert zlib.decompress(raw) == fixture("midru_current.html")
    assert sha == hashlib.sha256(fixture("midru_current.html")).hexdigest() and size == len(fixture("midru_current.html"))
    assert rows(config.database, "SELECT url, title, status, content_type FROM page_attachments ORDER BY url") == [
        ("https://mid.ru/upload/iblock/5a1/charter_ru.pdf", "текст Хартии (PDF)", "ok", "application/pdf"),
        ("https://mid.ru/upload/iblock/7c2/charter_en.docx", "English version", "gone", None),
    ]
    assert rows(config.database, "SELECT post_id, title FROM post_pages WHERE url = ?", CURRENT) == [
        (1, "Заявление МИД России в связи с годовщиной Евразийской хартии")]
    assert pages_matching(config.database, "Хартия") == [(CURRENT,)]


async def test_a_challenge_page_is_blocked_not_content_and_retried(tme, linking):
    site = tme.site("mid.ru")
    site.page("/ru/foreign_policy/news/1944000/", fixture("challenge_f5.html"))
    _, config = linking(CURRENT)

    report = await archive_channels(config, ["MFARussia"], mode="sync")

    assert report.pages.fetched == {"blocked": 1}
    [(status, error, attempts, retry_at, version)] = rows(
        config.database, "SELECT status, error, attempts, next_attempt_at, version FROM pages")
    assert (status, error, attempts, version) == ("blocked", "anti-bot page: F5/Shape challenge", 1, 0)
    assert retry_at is not None
    assert rows(config.database, "SELECT count(*) FROM page_versions") == [(0,)]
    # once the retry time has come, the wall is gone and the page is archived
    with connect_archive(config.database) as conn:
        conn.execute("UPDATE pages SET next_attempt_at = '2000-01-01T00:00:00Z'")
    site.page("/ru/foreign_policy/news/1944000/", fixture("midru_current.html"))
    report = await archive_channels(config, ["MFARussia"], mode="sync")
    assert report.pages.fetched == {"ok": 1}
    assert rows(config.database, "SELECT status, attempts, version FROM pages") == [("ok", 0, 1)]


async def test_a_real_page_carrying_the_challenge_script_is_content(tme, linking):
    html = fixture("midru_current.html").replace(b"<head>", b'<head><script src="/TSPD/08a4?type=7"></script>')
    tme.site("mid.ru").page("/ru/foreign_policy/news/1944000/", html)
    _, config = linking(CURRENT)

    report = await archive_channels(config, ["MFARussia"], mode="sync")

    assert report.pages.fetched == {"ok": 1}


async def test_fetch_faults(tme, linking):
    site = tme.site("mid.ru")
    site.page("/gone/", b"<html>no</html>", status=404)
    site.page("/flaky/", b"<html>oops</html>", status=500)
    site.page("/moved/", b"", status=301, Location="https://mid.ru/ru/foreign_policy/news/1944000/")
    site.page("/ru/foreign_policy/news/1944000/", fixture("midru_current.html"))
    site.page("/file.pdf", b"%PDF-1.4", content_type="application/pdf")
    site.page("/huge/", b"<html>" + b"x" * 300_000 + b"</html>")
    urls = ["https://mid.ru/gone/", "https://mid.ru/flaky/", "https://mid.ru/moved/", "https://mid.ru/file.pdf",
            "https://mid.ru/huge/"]
    _, config = linking(*urls)
    config = replace(config, network=replace(config.network, max_response_size=100_000))

    await archive_channels(config, ["MFARussia"], mode="sync")

    got = {url: (status, error, retry is not None) for url, status, error, retry in
           rows(config.database, "SELECT url, status, error, next_attempt_at FROM pages")}
    assert got["https://mid.ru/gone/"] == ("gone", "HTTP 404", False)
    assert got["https://mid.ru/flaky/"] == ("failed", "https://mid.ru/flaky/: HTTP 500 (after 4 attempts)", True)
    assert got["https://mid.ru/file.pdf"] == ("failed", "not an HTML page (application/pdf)", False)
    assert got["https://mid.ru/huge/"][0] == "failed" and "exceeds 100000 bytes" in got["https://mid.ru/huge/"][1]
    assert got["https://mid.ru/moved/"] == ("ok", None, False)
    assert rows(config.database, "SELECT final_url, redirects FROM pages WHERE url = 'https://mid.ru/moved/'") == [
        (CURRENT, json.dumps(["https://mid.ru/moved/"]))]
    assert tme.site_requests("mid.ru").count("/gone/") == 1  # 404 is not retried


async def test_robots_txt_is_honoured_and_read_once(tme, linking):
    site = tme.site("mid.ru")
    site.page("/robots.txt", "User-agent: *\nDisallow: /ru/news/?PAGEN\nDisallow: /private/\n", content_type="text/plain")
    site.page("/ru/foreign_policy/news/1944000/", fixture("midru_current.html"))
    _, config = linking(CURRENT, "https://mid.ru/private/report/")

    report = await archive_channels(config, ["MFARussia"], mode="sync")

    assert report.pages.fetched == {"ok": 1, "failed": 1}
    assert rows(config.database, "SELECT status, error FROM pages WHERE url = 'https://mid.ru/private/report/'") == [
        ("failed", "disallowed by robots.txt")]
    assert tme.site_requests("mid.ru").count("/robots.txt") == 1
    assert "/private/report/" not in tme.site_requests("mid.ru")


async def test_a_changed_page_keeps_both_versions(tme, linking):
    site = tme.site("mid.ru")
    site.page("/ru/foreign_policy/news/1944000/", fixture("midru_current.html"))
    _, config = linking(CURRENT)
    await archive_channels(config, ["MFARussia"], mode="sync")
    changed = fixture("midru_current.html").replace("Ровно год назад".encode(), "Два года назад".encode())
    site.page("/ru/foreign_policy/news/1944000/", changed)
    with connect_archive(config.database) as conn:
        conn.execute("UPDATE pages SET status = 'pending'")  # what refetch_after does once due

    await archive_channels(config, ["MFARussia"], mode="sync")

    versions = rows(config.database, "SELECT version, substr(text, 1, 14) FROM page_versions ORDER BY version")
    assert versions == [(1, "Ровно год наза"), (2, "Два года назад")]
    assert rows(config.database, "SELECT version, substr(text, 1, 14) FROM pages") == [(2, "Два года назад")]

    from click.testing import CliRunner

    from monitor.cli.main import cli
    history = await asyncio.to_thread(CliRunner().invoke, cli, ["-c", str(config.source), "pages", "--history", CURRENT])
    assert history.exit_code == 0, history.output
    lines = history.stdout.splitlines()
    assert lines[0] == f"{CURRENT}: 2 version(s)"
    assert [line.split("  ")[0] for line in lines if line.startswith("version ")] == ["version 1", "version 2"]
    assert "[-Ровно-]{+Два+} [-год-]{+года+} назад" in history.stdout  # the silent change, word by word
    unknown = await asyncio.to_thread(CliRunner().invoke, cli, ["-c", str(config.source), "pages", "--history",
                                                                "https://mid.ru/ru/none/"])
    assert unknown.exit_code == 1 and "no archived version of https://mid.ru/ru/none/" in unknown.stderr


async def test_pages_older_than_refetch_after_are_fetched_again(tme, linking):
    tme.site("mid.ru").page("/ru/foreign_policy/news/1944000/", fixture("midru_current.html"))
    _, config = linking(CURRENT, extra='refetch_after = "1d"\n')  # lands in [pages]
    await archive_channels(config, ["MFARussia"], mode="sync")
    fresh = await archive_channels(config, ["MFARussia"], mode="sync")
    with connect_archive(config.database) as conn:
        conn.execute("UPDATE pages SET fetched_at = '2020-01-01T00:00:00Z'")

    stale = await archive_channels(config, ["MFARussia"], mode="sync")

    assert (fresh.pages.fetched, stale.pages.fetched) == ({}, {"ok": 1})
    assert len([r for r in tme.requests if r == "//mid.ru/ru/foreign_policy/news/1944000/"]) == 2


async def test_links_to_telegram_posts_are_references_not_pages(tme, linking):
    _, config = linking("https://t.me/MID_Russia/41230")
    await archive_channels(config, ["MFARussia"], mode="sync")
    assert rows(config.database, "SELECT ref_channel, ref_post_id FROM links WHERE kind = 'hidden'") == [
        ("MID_Russia", 41230)]
    assert rows(config.database, "SELECT count(*) FROM pages") == [(0,)]


async def test_only_followed_domains_are_fetched(tme, linking):
    _, config = linking("https://example.org/article", "https://evil-mid.ru/x", "https://mid.ru.evil.example/x")
    report = await archive_channels(config, ["MFARussia"], mode="sync")
    assert report.pages.queued == 0
    assert [r for r in tme.requests if r.startswith("//")] == []


@pytest.mark.parametrize("url", [
    "http://127.0.0.1/", "http://localhost:8080/", "http://10.1.2.3/", "http://192.168.0.1/", "http://172.16.5.4/",
    "http://169.254.169.254/latest/meta-data/", "http://[::1]/", "http://[fe80::1]/", "http://[::ffff:127.0.0.1]/",
    "http://224.0.0.1/", "http://0.0.0.0/", "file:///etc/passwd", "javascript:alert(1)", "data:text/html,x",
    "ftp://mid.ru/x", "http://foo.localhost/",
])
async def test_internal_and_non_web_urls_are_refused(url):
    with pytest.raises(UnsafeURL, match="is not a public address|only http and https are fetched"):
        await check_url(url)


async def test_a_redirect_into_the_network_is_refused(tme, make_config):
    tme.site("mid.ru").page("/redirect/", b"", status=302, Location="http://127.0.0.1:9/admin")
    config = make_config("MFARussia")
    config = replace(config, network=replace(config.network, allow_private_addresses=False))
    async with pages_client(config) as http:
        with pytest.raises(UnsafeURL, match="127.0.0.1 is not a public address"):
            await http.get("https://mid.ru/redirect/")
    assert tme.site_requests("mid.ru") == ["/redirect/"]


async def test_pages_refetch_and_export_warc_commands(tme, linking, tmp_path):
    import asyncio

    from click.testing import CliRunner
    from warcio.archiveiterator import ArchiveIterator

    from monitor.cli.main import cli

    site = tme.site("mid.ru")
    site.page("/ru/foreign_policy/news/1944000/", fixture("midru_current.html"))
    site.page("/en/press_service/spokesman/briefings/1984512/", fixture("challenge_f5.html"))
    _, config = linking(CURRENT, BRIEFING)
    await archive_channels(config, ["MFARussia"], mode="sync")

    def run(*args: str):
        return asyncio.to_thread(CliRunner().invoke, cli, ["-c", str(config.source), *args])

    listing = await run("pages")
    blocked = await run("pages", "--status", "blocked")
    lines = listing.stdout.splitlines()
    assert sorted(line.split()[0] for line in lines) == ["blocked", "ok"]
    assert any(line.endswith("Заявление МИД России в связи с годовщиной Евразийской хартии") for line in lines)
    assert len(blocked.stdout.splitlines()) == 1
    assert blocked.stdout.rstrip().endswith("anti-bot page: F5/Shape challenge")

    queued = await run("refetch", "--status", "blocked")
    assert queued.stdout.strip() == "1 page(s) queued"
    assert rows(config.database, "SELECT status, attempts FROM pages WHERE url = ?", BRIEFING) == [("pending", 0)]
    none = await run("refetch")
    assert none.exit_code == 2 and "give URLs or --status" in none.stderr

    warc = tmp_path / "pages.warc.gz"
    exported = await run("export-warc", str(warc))
    assert exported.stdout.strip() == f"1 record(s) written to {warc}"
    with warc.open("rb") as stream:
        records = [(r.rec_headers.get_header("WARC-Target-URI"), r.http_headers.get_statuscode(),
                    r.content_stream().read()) for r in ArchiveIterator(stream) if r.rec_type == "response"]
    assert records == [(CURRENT, "200", fixture("midru_current.html"))]


async def test_a_500_then_200_and_a_stall_past_the_timeout(tme, linking):
    tme.site("mid.ru").page("/ru/foreign_policy/news/1944000/", fixture("midru_current.html"))
    _, config = linking(CURRENT)
    tme.site("mid.ru").page("/robots.txt", "User-agent: *\nAllow: /\n", content_type="text/plain")
    await archive_channels(config, ["MFARussia"], mode="sync")  # robots.txt cached; the page archived
    with connect_archive(config.database) as conn:
        conn.execute("UPDATE pages SET status = 'pending'")
    tme.requests.clear()

    original = tme.respond_site
    faults = iter([(500, {}, b"oops", 0.0), (200, {}, b"<html>slow</html>", 3.0)])  # timeout is 2s

    def flaky(host: str, path: str, *request: object):
        if path.startswith("/ru/foreign_policy"):
            fault = next(faults, None)
            if fault is not None:
                tme.requests.append(f"//{host}{path}")
                return fault
        return original(host, path, *request)

    tme.respond_site = flaky  # type: ignore[method-assign]
    report = await archive_channels(config, ["MFARussia"], mode="sync")

    assert report.pages.fetched == {"ok": 1}
    assert tme.site_requests("mid.ru").count("/ru/foreign_policy/news/1944000/") == 3
    [(text,)] = rows(config.database, "SELECT text FROM pages")
    assert text == (
        "Ровно год назад была принята Евразийская хартия многообразия и многополярности в XXI веке.\n\n"
        "Министр иностранных дел С.В.Лавров подчеркнул, что Хартия открыта для всех государств.\n\n"
        "Подробнее см. текст Хартии (PDF) и English version.\n\nПредыдущее заявление"
    )


def a_pdf(words: str) -> bytes:
    """A one-page PDF whose text is ``words`` (Latin letters), written by hand as PDF 1.4 allows."""
    stream = f"BT /F1 18 Tf 72 720 Td ({words}) Tj ET".encode()
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
               b"/Resources << /Font << /F1 5 0 R >> >> >>",
               b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    table = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, table)
    return bytes(out)


def a_docx(paragraphs: list[str]) -> bytes:
    import io
    import zipfile

    body = "".join(f"<w:p><w:r><w:t>{p}</w:t></w:r></w:p>" for p in paragraphs)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/'
                                                'package/2006/content-types"/>')
        archive.writestr("word/document.xml", '<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats'
                                              f'.org/wordprocessingml/2006/main"><w:body>{body}</w:body></w:document>')
    return buffer.getvalue()


async def test_attachments_are_searchable_exported_and_in_the_warc(tme, linking, tmp_path):
    from click.testing import CliRunner
    from warcio.archiveiterator import ArchiveIterator

    from monitor.cli.main import cli

    pdf, docx = a_pdf("The Quadrilateral protocol of accession"), a_docx(["Section one", "Trilaterally agreed"])
    site = tme.site("mid.ru")
    site.page("/ru/foreign_policy/news/1944000/", fixture("midru_current.html"))
    site.page("/upload/iblock/5a1/charter_ru.pdf", pdf, content_type="application/pdf")
    site.page("/upload/iblock/7c2/charter_en.docx", docx,
              content_type="application/vnd.openxmlformats-officedocument.wordprocessingml.document")
    _, config = linking(CURRENT)
    await archive_channels(config, ["MFARussia"], mode="sync")

    def run(*args: str):
        return asyncio.to_thread(CliRunner().invoke, cli, ["-c", str(config.source), *args], catch_exceptions=False)

    [hit] = json.loads((await run("search", "Quadrilateral", "--json")).stdout)
    assert (hit["kind"], hit["url"], hit["page"]) == ("attachment", "https://mid.ru/upload/iblock/5a1/charter_ru.pdf",
                                                     CURRENT)
    assert hit["linked_by"] == [f"{tme.url}/MFARussia/1"] and "[Quadrilateral]" in hit["snippet"]
    [word] = json.loads((await run("search", "Trilaterally", "--json")).stdout)
    assert word["url"] == "https://mid.ru/upload/iblock/7c2/charter_en.docx"

    exported = tmp_path / "posts.jsonl"
    assert (await run("export", "--with-pages", "-o", str(exported))).exit_code == 0
    [post] = [json.loads(line) for line in exported.read_text().splitlines()]
    attachments = {a["file_name"]: a for a in post["pages"][0]["attachments"]}
    assert attachments["charter_ru.pdf"]["sha256"] == hashlib.sha256(pdf).hexdigest()
    assert (attachments["charter_ru.pdf"]["size"], attachments["charter_ru.pdf"]["content_type"]) == (
        len(pdf), "application/pdf")
    assert attachments["charter_en.docx"]["status"] == "ok"

    warc = tmp_path / "pages.warc.gz"
    assert (await run("export-warc", str(warc))).exit_code == 0
    with warc.open("rb") as stream:
        bodies = {record.rec_headers.get_header("WARC-Target-URI"): record.content_stream().read()
                  for record in ArchiveIterator(stream) if record.rec_type == "response"}
    assert bodies["https://mid.ru/upload/iblock/5a1/charter_ru.pdf"] == pdf
    assert bodies["https://mid.ru/upload/iblock/7c2/charter_en.docx"] == docx
    assert CURRENT in bodies


async def test_an_alert_rule_reaches_the_text_of_a_pages_document(tme, linking):
    from datetime import UTC, datetime, timedelta

    site = tme.site("mid.ru")
    site.page("/ru/foreign_policy/news/1944000/", fixture("midru_current.html"))
    site.page("/upload/iblock/5a1/charter_ru.pdf", a_pdf("Annex on the Quadrilateral format"),
              content_type="application/pdf")
    channel, config = linking(CURRENT, extra='\n[[alerts.rules]]\nname = "quad"\nkeywords = ["Quadrilateral"]\n'
                                               'scope = ["pages"]\n')
    channel.add(1, text=f'Заявление <a href="{CURRENT}" onclick="return confirm(1)">здесь</a>',
                start=datetime.now(UTC) - timedelta(hours=2))  # news, not a backfill of old posts

    await archive_channels(config, ["MFARussia"], mode="sync")

    assert rows(config.database, "SELECT rule, kind, page_url, terms FROM alerts") == [
        ("quad", "page", "https://mid.ru/upload/iblock/5a1/charter_ru.pdf", '["Quadrilateral"]')]
