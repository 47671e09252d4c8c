"""Hostile and broken posts on the web preview: a post that does not parse, deep nesting, wrong
charsets, absurd numbers, posts the preview cannot show. Each is that post's (or page's) problem;
nothing archived is overwritten and the other channels go on."""

from __future__ import annotations

import asyncio

import pytest
from click.testing import CliRunner
from helpers import connect_archive, posts_matching, rows

from monitor.cli.main import cli
from monitor.daemon.service import archive_channels
from monitor.sources.tme_values import PageDecodeError, decode_page

BAD_DATE = "0001-01-01T00:00:00+14:00"  # OverflowError when turned into UTC
UNVIEWABLE = ('<div class="message_media_not_supported_wrap"><div class="message_media_not_supported">'
              '<div class="message_media_not_supported_label">Please open Telegram to view this post</div>'
              '</div></div>')


def post_html(username: str, post_id: int, *, text: str = "", date: str | None = None, views: str = "1.2K",
              data_post: str | None = None, extra: str = "") -> str:
    """One message in t.me's markup (written by us), with parts that tests may break."""
    return (
        f'<div class="tgme_widget_message_wrap js-widget_message_wrap"><div class="tgme_widget_message '
        f'js-widget_message" data-post="{data_post or f"{username}/{post_id}"}"><div class="tgme_widget_message_bubble">'
        + (f'<div class="tgme_widget_message_text js-message_text" dir="auto">{text}</div>' if text else "")
        + extra
        + f'<div class="tgme_widget_message_footer"><span class="tgme_widget_message_views">{views}</span>'
        f'<span class="tgme_widget_message_meta"><a class="tgme_widget_message_date" href="https://t.me/{username}/'
        f'{post_id}"><time datetime="{date or f"2024-05-{post_id:02d}T10:00:00+00:00"}">10:00</time></a></span>'
        "</div></div></div></div>"
    )


def status_of(config) -> str:
    return CliRunner().invoke(cli, ["-c", str(config.source), "status"]).stdout


async def test_a_post_that_does_not_parse_never_overwrites_the_archived_one(tme, make_config):
    channel = tme.channel("MFARussia")
    for post_id in (1, 2, 3):
        channel.add(post_id, text=f"Заявление {post_id} https://mid.ru/ru/{post_id}/")
    config = make_config("MFARussia")
    await archive_channels(config, ["MFARussia"], mode="backfill")
    before = rows(config.database, "SELECT post_id, version, text, html, date FROM posts ORDER BY post_id")

    channel.add(2, post_html("MFARussia", 2, text="Заявление 2 изменено", date=BAD_DATE))
    channel.add(3, text="Заявление 3 изменено")
    report = await archive_channels(config, ["MFARussia"], mode="sync")

    assert [o.error for o in report.channels] == [None]
    after = rows(config.database, "SELECT post_id, version, text, html, date FROM posts ORDER BY post_id")
    assert after[:2] == before[:2]  # post 2 is untouched: text, html, date, version
    assert after[2][1:3] == (2, "Заявление 3 изменено")  # the page's other posts are saved
    assert rows(config.database, "SELECT count(*) FROM post_versions WHERE post_id = 2") == [(1,)]
    assert rows(config.database, "SELECT url FROM links WHERE post_id = 2") == [("https://mid.ru/ru/2/",)]
    assert posts_matching(config.database, "Заявление") == [
        ("Заявление 1 https://mid.ru/ru/1/",), ("Заявление 2 https://mid.ru/ru/2/",), ("Заявление 3 изменено",)]
    [(post_id, error, attempts)] = rows(config.database, "SELECT post_id, error, attempts FROM post_problems")
    assert (post_id, attempts) == (2, 1) and error.startswith("OverflowError")
    assert "MFARussia: 1 post(s) did not parse; kept out of the archive and retried" in await asyncio.to_thread(
        status_of, config)

    # once due, the post is read again; when it parses, it is saved and no longer a problem
    channel.add(2, text="Заявление 2 изменено")
    with connect_archive(config.database) as conn:
        conn.execute("UPDATE post_problems SET next_attempt_at = '2000-01-01T00:00:00Z'")
    await archive_channels(config, ["MFARussia"], mode="sync")
    assert rows(config.database, "SELECT version, text FROM posts WHERE post_id = 2") == [(2, "Заявление 2 изменено")]
    assert rows(config.database, "SELECT count(*) FROM post_problems") == [(0,)]


async def test_a_never_parsing_post_on_a_new_page_is_recorded_not_saved_empty(tme, make_config):
    channel = tme.channel("MFARussia")
    channel.add(1, text="first")
    channel.add(2, post_html("MFARussia", 2, text="broken", date=BAD_DATE))
    channel.add(3, text="third")
    config = make_config("MFARussia")

    await archive_channels(config, ["MFARussia"], mode="backfill")

    assert rows(config.database, "SELECT post_id FROM posts ORDER BY post_id") == [(1,), (3,)]
    assert rows(config.database, "SELECT post_id, attempts FROM post_problems") == [(2, 1)]
    tme.requests.clear()
    await archive_channels(config, ["MFARussia"], mode="sync")  # seen again in the window; its retry not due
    assert rows(config.database, "SELECT post_id, attempts FROM post_problems") == [(2, 2)]
    assert tme.page_requests() == ["/s/MFARussia"]


async def test_an_unparseable_link_is_dropped_the_post_is_kept(tme, make_config):
    channel = tme.channel("MFARussia")
    channel.add(1, text='См. <a href="http://[oops">здесь</a> и https://mid.ru/ru/1/')
    config = make_config("MFARussia")

    await archive_channels(config, ["MFARussia"], mode="backfill")

    assert rows(config.database, "SELECT text FROM posts") == [("См. здесь и https://mid.ru/ru/1/",)]
    assert rows(config.database, "SELECT url, kind FROM links") == [("https://mid.ru/ru/1/", "text")]


async def test_deep_nesting_is_read_whole_or_fails_the_round_never_a_gap(tme, make_config):
    channel = tme.channel("MFARussia")
    for post_id in range(1, 31):
        channel.add(post_id, text=f"post {post_id}")
    channel.add(15, text="<b>" * 300 + "deep" + "</b>" * 300)
    config = make_config("MFARussia")

    await archive_channels(config, ["MFARussia"], mode="backfill")
    assert rows(config.database, "SELECT count(*), min(post_id), max(post_id) FROM posts") == [(30, 1, 30)]
    assert rows(config.database, "SELECT text FROM posts WHERE post_id = 15") == [("deep",)]

    other = tme.channel("MID_Russia")
    for post_id in range(1, 31):
        other.add(post_id, text=f"post {post_id}")
    other.add(25, text="<b>" * 5000 + "deeper" + "</b>" * 5000)  # past what any parser setting reads
    config = make_config("MID_Russia", "MFARussia")
    report = await archive_channels(config, ["MID_Russia", "MFARussia"], mode="backfill")

    failed, fine = report.channels
    assert failed.error is not None and "could not be parsed whole" in failed.error
    assert fine.error is None
    state = rows(config.database, "SELECT head_id, tail_id, backfill_done_at FROM channels WHERE username = 'MID_Russia'")
    assert state == [(None, None, None)]  # nothing advanced past the unread posts
    assert rows(config.database, "SELECT count(*) FROM posts JOIN channels c ON c.id = channel_id "
                                 "WHERE c.username = 'MID_Russia'") == [(0,)]


async def test_a_wrong_charset_header_makes_no_mojibake_versions(tme, make_config):
    channel = tme.channel("MFARussia")
    for post_id in (1, 2, 3):
        channel.add(post_id, text=f"Заявление МИД России {post_id}")
    config = make_config("MFARussia")
    await archive_channels(config, ["MFARussia"], mode="backfill")

    channel.content_type = "text/html; charset=windows-1251"
    report = await archive_channels(config, ["MFARussia"], mode="sync")
    channel.content_type = "text/html; charset=x-bogus"
    report2 = await archive_channels(config, ["MFARussia"], mode="sync")

    assert [o.error for o in report.channels + report2.channels] == [None, None]
    assert rows(config.database, "SELECT max(version), min(text) FROM posts") == [(1, "Заявление МИД России 1")]


async def test_a_page_that_does_not_decode_is_a_page_error(tme, make_config):
    channel = tme.channel("MFARussia")
    channel.add(1, text="Заявление МИД России")
    config = make_config("MFARussia")
    await archive_channels(config, ["MFARussia"], mode="backfill")

    channel.encoding = "cp1251"  # bytes that are not the UTF-8 the page declares
    report = await archive_channels(config, ["MFARussia"], mode="sync")
    assert report.channels[0].error is not None and "not valid utf-8" in report.channels[0].error

    assert rows(config.database, "SELECT version, text FROM posts") == [(1, "Заявление МИД России")]


def test_a_page_declaring_an_unknown_charset_is_a_page_error():
    with pytest.raises(PageDecodeError, match="the page declares an unknown charset 'x-bogus'"):
        decode_page(b'<html><head><meta charset="x-bogus"></head><body></body></html>')
    assert decode_page('<html><meta http-equiv="Content-Type" content="text/html; charset=windows-1251">'
                       "Заявление</html>".encode("cp1251")).endswith("Заявление</html>")
    assert decode_page("<html>Заявление</html>".encode()) == "<html>Заявление</html>"  # no declaration: UTF-8


async def test_absurd_numbers_are_that_posts_problem_not_the_rounds(tme, make_config):
    big = tme.channel("MFARussia")
    big.add(1, text="normal")
    big.add(2, post_html("MFARussia", 2, text="huge views", views="99999999999999999999"))
    big.add(3, post_html("MFARussia", 3, text="huge id", data_post="MFARussia/18446744073709551616"))
    tme.channel("MID_Russia").add(1, text="the other channel")
    config = make_config("MFARussia", "MID_Russia")

    report = await archive_channels(config, ["MFARussia", "MID_Russia"], mode="backfill")

    assert [o.error for o in report.channels] == [None, None]
    assert rows(config.database, "SELECT post_id, views, text FROM posts ORDER BY channel_id, post_id") == [
        (1, 1200, "normal"), (2, None, "huge views"), (1, 1200, "the other channel")]


async def test_a_post_the_preview_cannot_show_is_marked_and_never_replaces_content(tme, make_config):
    channel = tme.channel("MFARussia")
    channel.add(1, text="Заявление")
    channel.add(2, post_html("MFARussia", 2, extra=UNVIEWABLE))
    config = make_config("MFARussia")
    await archive_channels(config, ["MFARussia"], mode="backfill")
    assert rows(config.database, "SELECT post_id, text, media FROM posts ORDER BY post_id") == [
        (1, "Заявление", None), (2, None, '[{"type": "unviewable"}]')]

    channel.add(1, post_html("MFARussia", 1, extra=UNVIEWABLE))  # now the preview cannot show post 1
    await archive_channels(config, ["MFARussia"], mode="sync")

    assert rows(config.database, "SELECT version, text, media FROM posts WHERE post_id = 1") == [(1, "Заявление", None)]
    assert rows(config.database, "SELECT count(*) FROM post_versions WHERE post_id = 1") == [(1,)]
    assert "MFARussia: 1 post(s) the web preview cannot show" in await asyncio.to_thread(status_of, config)


async def test_inline_buttons_are_kept_and_their_followed_links_queued(tme, make_config):
    buttons = ('<div class="tgme_widget_message_inline_keyboard"><div class="tgme_widget_message_inline_row">'
               '<a class="tgme_widget_message_inline_button url_button" href="https://mid.ru/ru/press/1/">'
               '<span class="tgme_widget_message_inline_button_text">Читать</span></a></div></div>')
    tme.channel("MFARussia").add(1, post_html("MFARussia", 1, text="Заявление", extra=buttons))
    config = make_config("MFARussia")

    await archive_channels(config, ["MFARussia"], mode="backfill")

    assert rows(config.database, "SELECT buttons FROM posts") == [('[{"label": "Читать", "url": "https://mid.ru/ru/press/1/"}]',)]
    assert rows(config.database, "SELECT buttons IS NOT NULL FROM post_versions") == [(1,)]
    assert rows(config.database, "SELECT url, kind FROM links") == [("https://mid.ru/ru/press/1/", "button")]
    assert rows(config.database, "SELECT url FROM pages") == [("https://mid.ru/ru/press/1/",)]


async def test_a_post_that_did_not_parse_is_retried_when_due_even_far_from_the_newest_page(tme, make_config):
    channel = tme.channel("MFARussia")
    for post_id in range(1, 41):
        channel.add(post_id, text=f"post {post_id}")
    channel.add(5, post_html("MFARussia", 5, text="broken", date=BAD_DATE))
    config = make_config("MFARussia", extra="\n[sync]\nrecheck_posts = 0\n")
    await archive_channels(config, ["MFARussia"], mode="backfill")
    assert rows(config.database, "SELECT post_id FROM post_problems") == [(5,)]

    channel.add(5, text="post 5, readable now")
    await archive_channels(config, ["MFARussia"], mode="sync")  # not due: only the newest page is read
    assert rows(config.database, "SELECT count(*) FROM posts WHERE post_id = 5") == [(0,)]
    with connect_archive(config.database) as conn:
        conn.execute("UPDATE post_problems SET next_attempt_at = '2000-01-01T00:00:00Z'")
    tme.requests.clear()
    await archive_channels(config, ["MFARussia"], mode="sync")

    assert "/s/MFARussia?before=6" in tme.page_requests()
    assert rows(config.database, "SELECT text FROM posts WHERE post_id = 5") == [("post 5, readable now",)]
    assert rows(config.database, "SELECT count(*) FROM post_problems") == [(0,)]
