"""The analyst's instruments on loopback: echoes of a statement across channels, reach over
time, gaps of a channel, and who amplifies whom."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner
from conftest import FAST_PAGES
from helpers import connect_archive
from tmeserver import FIXTURES, synthetic_post

from monitor.cli.main import cli
from monitor.daemon.service import archive_channels
from storage.db import open_archive, transaction
from storage.reach import FIRST_DAYS, record_reach

SENTENCES = [
    "Министерство иностранных дел Российской Федерации заявляет о глубокой озабоченности развитием ситуации в регионе.",
    "Мы призываем все стороны проявить сдержанность и вернуться к переговорам на основе международного права.",
    "Российская сторона готова содействовать политическому урегулированию в любых приемлемых форматах.",
    "Односторонние санкционные меры лишь усугубляют гуманитарное положение мирного населения страны.",
    "Москва продолжит тесную координацию с партнёрами по Шанхайской организации сотрудничества и БРИКС.",
]
STATEMENT = " ".join(SENTENCES)
EDITED = " ".join(SENTENCES[:2] + ["Российская сторона предлагает провести консультации экспертов уже в текущем месяце."]
                  + SENTENCES[3:])
# Quotes two of the five sentences inside a long text of its own: below the threshold.
QUOTING = ("Обзор прессы за неделю: внимание комментаторов привлекли сразу несколько сюжетов, связанных с "
           "энергетикой, транспортными коридорами, валютным регулированием и новыми правилами торговли. "
           "Эксперты подробно обсуждали перспективы строительства портов, железных дорог и трубопроводов. "
           f"Среди цитат недели: «{SENTENCES[0]} {SENTENCES[1]}» Далее аналитики рассматривают динамику "
           "цен на зерно, удобрения, металлы и нефть, а также прогнозы урожая в южных регионах на следующий сезон.")
RELEASE = "https://mid.ru/{lang}/foreign_policy/news/1944000/"
RECENT = datetime.now(UTC) - timedelta(days=3)


def forwarded(username: str, post_id: int, origin: str, text: str) -> str:
    """A post of ``username`` forwarded from the t.me post ``origin``, in t.me's markup."""
    post = synthetic_post(username, post_id, text=text, start=RECENT, channel_id=104)
    mark = ('<div class="tgme_widget_message_forwarded_from accent_color">Forwarded from <a class="'
            f'tgme_widget_message_forwarded_from_name" href="{origin}"><span dir="auto">Russian MFA</span></a></div>')
    return post.replace('<div class="tgme_widget_message_text', mark + '<div class="tgme_widget_message_text', 1)


def cli_json(config, *args: str):
    result = CliRunner().invoke(cli, ["-c", str(config.source), *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture
async def five_channels(tme, make_config):
    """A ministry, three embassies and a language channel (see the test for who says what)."""
    page = (FIXTURES / "sites" / "midru_current.html").read_text(encoding="utf-8")
    for lang in ("ru", "en"):
        tme.site("mid.ru").page(RELEASE.format(lang=lang).removeprefix("https://mid.ru"), page)
    tme.channel("MFARussia").add(10, text=f'{STATEMENT} <a href="{RELEASE.format(lang="ru")}">Подробнее</a>',
                                 start=RECENT, channel_id=101)
    embassy = tme.channel("EmbassyOne")  # (tme.channel makes a new channel each time it is called)
    embassy.add(1, text=STATEMENT, start=RECENT, channel_id=102)  # a repost without a forward
    embassy.add(2, text=QUOTING, start=RECENT, channel_id=102)  # quotes two sentences: no echo
    tme.channel("EmbassyTwo").add(1, text=EDITED, start=RECENT, channel_id=103)  # one sentence changed
    tme.channel("EmbassyThree").add(1, html=forwarded("EmbassyThree", 1, "https://t.me/MFARussia/10", STATEMENT))
    tme.channel("MFA_en").add(5, text="Statement by the Ministry of Foreign Affairs on the situation in the region "
                                      f'<a href="{RELEASE.format(lang="en")}">Read more</a>', start=RECENT,
                              channel_id=105)
    config = make_config("MFARussia", "EmbassyOne", "EmbassyTwo", "EmbassyThree", "MFA_en", pages=FAST_PAGES)
    await archive_channels(config, ["MFARussia", "EmbassyOne", "EmbassyTwo", "EmbassyThree", "MFA_en"],
                           mode="backfill")
    return config


async def test_echoes_finds_reposts_forwards_and_translations_and_not_a_quote(five_channels, tme):
    config = five_channels
    found = await asyncio.to_thread(cli_json, config, "echoes", "MFARussia", "10", "--json")

    kinds = {(e["channel"], e["post_id"]): e["kind"] for e in found}
    assert kinds == {
        ("MFARussia", 10): "this post",
        ("EmbassyOne", 1): "repost",
        ("EmbassyTwo", 1): "edited repost",
        ("EmbassyThree", 1): "forward",
        ("MFA_en", 5): "same release",
    }
    similarity = {(e["channel"], e["post_id"]): e["similarity"] for e in found}
    assert similarity[("EmbassyOne", 1)] >= 0.9 and 0.5 <= similarity[("EmbassyTwo", 1)] < 0.9
    # the quote shares words with the statement, but too few to repeat it
    from storage.echoes import echo_kind, jaccard, shingles

    assert jaccard(shingles(STATEMENT), shingles(QUOTING)) > 0.15 and echo_kind(
        jaccard(shingles(STATEMENT), shingles(QUOTING))) is None
    dates = [e["date"] for e in found]
    assert dates == sorted(dates)  # the first appearance first
    # the SQL view says the same (a pair tied two ways is there under each)
    with connect_archive(config.database) as conn:
        view = {(row[0], row[1], row[2]) for row in conn.execute(
            "SELECT echo_channel, echo_post_id, kind FROM echoes WHERE channel = 'MFARussia' AND post_id = 10")}
    assert {("EmbassyOne", 1, "repost"), ("EmbassyTwo", 1, "edited repost"), ("EmbassyThree", 1, "forward"),
            ("MFA_en", 5, "same release")} <= view
    assert not {row for row in view if row[:2] == ("EmbassyOne", 2)}

    # an edit that makes the embassy's text diverge takes it out of the echoes
    tme.channel("EmbassyTwo").add(1, text="Посольство информирует о графике работы консульского отдела в праздничные "
                                          "дни: приём граждан будет вестись по предварительной записи на сайте.",
                                  edited=True, start=RECENT, channel_id=103)
    await archive_channels(config, ["EmbassyTwo"], mode="sync")
    again = await asyncio.to_thread(cli_json, config, "echoes", "MFARussia", "10", "--json")
    assert ("EmbassyTwo", 1) not in {(e["channel"], e["post_id"]) for e in again}


async def test_the_graph_counts_who_forwards_and_links_whom(five_channels, tmp_path):
    config = five_channels
    result = await asyncio.to_thread(CliRunner().invoke, cli, ["-c", str(config.source), "graph"],
                                     catch_exceptions=False)
    assert result.exit_code == 0
    assert result.stdout.splitlines()[0] == "channel,amplifies,kind,posts,first_at,last_at"
    assert any(line.startswith("EmbassyThree,MFARussia,forward,1,") for line in result.stdout.splitlines())
    graphml = tmp_path / "graph.graphml"
    written = await asyncio.to_thread(CliRunner().invoke, cli, ["-c", str(config.source), "graph", "--format",
                                                                "graphml", "-o", str(graphml)], catch_exceptions=False)
    assert written.exit_code == 0
    from xml.etree import ElementTree

    root = ElementTree.parse(graphml).getroot()
    ns = "{http://graphml.graphdrawing.org/xmlns}"
    [edge] = root.iter(f"{ns}edge")
    assert (edge.get("source"), edge.get("target")) == ("EmbassyThree", "MFARussia")


async def test_reach_keeps_a_bounded_series_with_the_first_and_last_values(tmp_path):
    """A post read 30 times a day for 30 simulated days, its count growing at every reading."""
    async with open_archive(tmp_path / "reach.sqlite3") as conn:
        async with transaction(conn):
            await conn.execute("INSERT INTO channels (username, added_at) VALUES ('MFARussia', '2024-01-01T00:00:00Z')")
        posted = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
        views = 100
        for reading in range(30 * 30):  # every 48 minutes
            at = posted + timedelta(minutes=48 * reading)
            views += 7
            async with transaction(conn):  # post 2's count never changes
                await conn.run(record_reach, 1, [(1, posted.strftime("%Y-%m-%dT%H:%M:%SZ"), views, reading == 0),
                                                 (2, posted.strftime("%Y-%m-%dT%H:%M:%SZ"), 500, reading == 0)],
                               at.strftime("%Y-%m-%dT%H:%M:%SZ"))
        points = await conn.execute_fetchall("SELECT at, views FROM post_reach WHERE post_id = 1 ORDER BY at")
        steady = await conn.execute_fetchall("SELECT at, views FROM post_reach WHERE post_id = 2")
    assert [tuple(p) for p in steady] == [("2024-05-01T09:00:00Z", 500)]  # one point: it never changed
    assert len(points) <= FIRST_DAYS * 24 + 1 + 30  # one an hour for two days, then one a day
    assert points[0][1] == 107 and points[-1][1] == views  # the first and the last reading, exactly
    assert [p[1] for p in points] == sorted(p[1] for p in points)


async def test_reach_is_kept_as_a_channel_is_read_and_printed(tme, make_config):
    channel = tme.channel("MFARussia")
    channel.add(1, text="A statement", views="1.2K")
    config = make_config("MFARussia")
    await archive_channels(config, ["MFARussia"], mode="sync")
    channel.add(1, text="A statement", views="3.4K")
    with connect_archive(config.database) as conn:  # the next reading, an hour on, in another slot
        conn.execute("UPDATE post_reach SET at = '2020-01-01T00:00:00Z'")
        conn.execute("UPDATE channels SET page_signature = NULL")
    await archive_channels(config, ["MFARussia"], mode="sync")
    series = await asyncio.to_thread(cli_json, config, "reach", "MFARussia", "1", "--json")
    assert [point["views"] for point in series] == [1200, 3400]


async def test_gaps_names_holes_deletions_unviewable_and_a_disabled_preview_and_recheck_closes_them(tme, make_config):
    channel = tme.channel("MFARussia")
    for post_id in (1, 2, 5, 6, 7):
        channel.add(post_id, text=f"Заявление {post_id}")
    channel.add(8, channel.posts[7].replace("MFARussia/7", "MFARussia/8").replace(
        '<div class="tgme_widget_message_text js-message_text" dir="auto">Заявление 7</div>',
        '<div class="message_media_not_supported_label">Please open Telegram to view this post</div>'))
    channel.add(9, text="Заявление 9")
    channel.add(4, text="Заявление 4")
    channel.hide(4)  # not on the pages now (3 never was: deleted before anyone saw it)
    config = make_config("MFARussia", "NoPreview")
    await archive_channels(config, ["MFARussia", "NoPreview"], mode="backfill")
    channel.delete(6)
    await archive_channels(config, ["MFARussia"], mode="recheck")  # confirms 6 deleted; checks 3 and 4

    found = await asyncio.to_thread(cli_json, config, "gaps", "MFARussia", "--json")
    assert (found["oldest"], found["newest"]) == (1, 9)
    assert found["deleted"] == [6] and found["unviewable"] == [8]
    assert found["absent"] == [3]  # its single-post page says it is gone
    assert found["missing"] == [[4, 4]] and found["missing_ids"] == 1  # it shows alone, not on the pages
    disabled = await asyncio.to_thread(cli_json, config, "gaps", "NoPreview", "--json")
    assert disabled["preview_disabled"] is True

    channel.posts[4] = channel.hidden.pop(4)  # back on the pages: the next recheck archives it
    await archive_channels(config, ["MFARussia"], mode="recheck")
    closed = await asyncio.to_thread(cli_json, config, "gaps", "MFARussia", "--json")
    assert closed["missing"] == [] and closed["absent"] == [3]
    status = await asyncio.to_thread(CliRunner().invoke, cli, ["-c", str(config.source), "status", "--json"])
    [mfa] = [c for c in json.loads(status.stdout)["channels"] if c["username"] == "MFARussia"]
    assert mfa["gap_ids"] == 0


async def test_an_albums_members_are_not_gaps(tme, make_config):
    from test_media import cdn, photo

    cdn(tme)
    channel = tme.channel("MFARussia")
    channel.add(1, text="Заявление")
    channel.add(2, text="Album" + photo("other.jpg", 2) + photo("photo2.jpg", 3))  # posts 2 and 3, shown as 2
    channel.add(4, text="Заявление 4")
    config = make_config("MFARussia")
    await archive_channels(config, ["MFARussia"], mode="backfill")
    found = await asyncio.to_thread(cli_json, config, "gaps", "MFARussia", "--json")
    assert found["missing"] == []


async def test_the_reading_room_shows_echoes_and_draws_reach(five_channels):
    import httpx
    from helpers import start_browse

    config = five_channels
    with connect_archive(config.database) as conn:  # a second reading of post 10, a day on
        conn.execute("INSERT INTO post_reach (channel_id, post_id, at, views) SELECT channel_id, post_id, "
                     "'2030-01-01T00:00:00Z', views + 500 FROM post_reach WHERE post_id = 10")
    process, base, _ = await asyncio.to_thread(start_browse, config.source)
    try:
        page = (await asyncio.to_thread(httpx.get, f"{base}/MFARussia/10")).text
    finally:
        process.terminate()
        process.wait(timeout=10)
    section = page.split('<h2 id="echoes">')[1].split("</section>")[0]
    for link in ('href="/EmbassyOne/1"', 'href="/EmbassyTwo/1"', 'href="/EmbassyThree/1"', 'href="/MFA_en/5"'):
        assert link in section
    assert "<polyline" in page and "2 readings" in page


async def test_an_echoes_rule_fires_when_a_watched_statement_is_repeated(tme, make_config):
    """The rule watches MFARussia's statements about Шанхайской; an embassy repeating one (no
    forward, a sentence changed) is the alert, though the embassy is not among the rule's channels."""
    now = datetime.now(UTC) - timedelta(hours=3)
    tme.channel("MFARussia").add(10, text=STATEMENT, start=now, channel_id=101)
    config = make_config("MFARussia", "EmbassyTwo", pages=FAST_PAGES, extra=(
        '\n[[alerts.rules]]\nname = "sco"\nkeywords = ["Шанхайской"]\nchannels = ["MFARussia"]\n'
        'scope = ["posts"]\nechoes = true\n'))
    await archive_channels(config, ["MFARussia"], mode="sync")
    tme.channel("EmbassyTwo").add(1, text=EDITED, start=now, channel_id=103)
    await archive_channels(config, ["EmbassyTwo"], mode="sync")
    with connect_archive(config.database) as conn:
        alerts = conn.execute("SELECT a.rule, c.username, a.post_id, a.context FROM alerts a "
                              "JOIN channels c ON c.id = a.channel_id ORDER BY a.id").fetchall()
    assert [(rule, channel, post) for rule, channel, post, _ in alerts] == [
        ("sco", "MFARussia", 10), ("sco", "EmbassyTwo", 1)]
    assert alerts[1][3].startswith("edited repost of MFARussia/10")


async def test_posts_archived_before_the_echo_index_are_indexed_by_its_backlog(tmp_path):
    from storage.echoes import find_echoes, index_backlog
    from storage.sqlite.connection import connect
    from storage.sqlite.migrate import load_migrations, migrate

    path = tmp_path / "old.sqlite3"
    conn = await connect(path)
    try:
        await migrate(conn, [m for m in load_migrations() if m.version < 26])
        async with transaction(conn):
            for channel_id, name, post_id, text in ((1, "MFARussia", 10, STATEMENT), (2, "EmbassyTwo", 1, EDITED)):
                await conn.execute("INSERT INTO channels (id, username, added_at) VALUES (?, ?, '2024-01-01T00:00:00Z')",
                                   (channel_id, name))
                await conn.execute(
                    "INSERT INTO posts (channel_id, post_id, date, text, content_hash, first_seen_at, last_seen_at, "
                    "version_seen_at) VALUES (?, ?, ?, ?, 'h', '2024-06-01T00:00:00Z', '2024-06-01T00:00:00Z', "
                    "'2024-06-01T00:00:00Z')", (channel_id, post_id, f"2024-05-0{channel_id}T10:00:00Z", text))
    finally:
        await conn.close()

    async with open_archive(path) as conn:
        assert [e.kind for e in await conn.run(find_echoes, "MFARussia", 10)] == ["this post"]  # not indexed yet
        rounds = []
        while True:
            async with transaction(conn):
                indexed, left = await conn.run(index_backlog, "2024-06-02T00:00:00Z", 1)
            rounds.append(indexed)
            if not left:
                break
        assert rounds == [1, 1]
        assert [(e.channel, e.kind) for e in await conn.run(find_echoes, "MFARussia", 10)] == [
            ("MFARussia", "this post"), ("EmbassyTwo", "edited repost")]
        async with transaction(conn):
            assert await conn.run(index_backlog, "2024-06-02T00:00:00Z") == (0, 0)  # done for good


@pytest.mark.parametrize("command", [["graph", "-o"], ["feed", "edits", "-o"], ["export-site"]])
async def test_an_output_that_cannot_be_written_is_a_clear_error(five_channels, tmp_path, command):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    target = blocker / "out"  # under a file: no directory can be made there
    result = await asyncio.to_thread(CliRunner().invoke, cli, ["-c", str(five_channels.source), *command, str(target)])
    assert result.exit_code in (1, 2) and isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output and "cannot write" in result.output, result.output
