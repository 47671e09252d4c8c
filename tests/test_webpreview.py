"""The web-preview parser against the real captured pages, field by field."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.sources.webpreview import parse_channel_page, parse_count, parse_duration
from storage.models import Link, Post


def page(shared: Path, name: str, username: str = "tchantest"):
    return parse_channel_page((shared / name).read_text(encoding="utf-8"), username)


def only_post(shared: Path, name: str) -> Post:
    [post] = page(shared, name).posts
    return post


@pytest.mark.parametrize(
    ("text", "count"),
    [("2", 2), ("991", 991), ("1.2K", 1200), ("2.95K", 2950), ("436.6K", 436600), ("3.1M", 3100000),
     ("1,5M", 1500000), ("", None), ("views", None), (None, None)],
)
def test_counts(text, count):
    assert parse_count(text) == count


def test_durations():
    assert [parse_duration(v) for v in ("0:19", "1:30", "1:02:03", "x")] == [19, 90, 3723, None]


def test_channel_page_has_every_post_and_cursor(shared):
    result = page(shared, "channel-page-swiftui_dev-before-262.html", "swiftui_dev")

    assert [p.post_id for p in result.posts] == [237, 245, 246, 247, 248, 249, 250, 252, 254, 256, 257, 258, 259, 260]
    assert (result.before, result.after, result.has_history) == (237, 260, True)
    assert result.channel.username == "swiftui_dev"
    assert result.channel.telegram_id == 1492664793
    assert result.channel.title == "Alexander Kraev"
    assert result.channel.description.startswith("Tech, Mobile (like SwiftUI, Compose), Code, Thoughts")
    assert dict(result.channel.counters) == {"subscribers": 991, "photos": 87, "videos": 41, "files": 1, "links": 79}
    assert sum(p.edited for p in result.posts) == 10
    assert all(p.date and p.views for p in result.posts)
    assert [p.post_id for p in result.posts if any(m["type"] == "poll" for m in p.media)] == [258, 259, 260]
    assert [p.post_id for p in result.posts if any(m.get("too_big") for m in p.media)] == [249, 256]


def test_album_first_post(shared):
    album = page(shared, "channel-page-swiftui_dev-before-262.html", "swiftui_dev").posts[0]

    assert album == Post(
        post_id=237,
        date="2023-04-01T10:41:15Z",
        text="🎲🗿 SwiftUI Environment values hints\n\n#groovy",
        html=album.html,
        views=2950,
        author="Alex Kraev",
        grouped_id=237,
        media=tuple({"type": "photo", "post_id": i} for i in range(237, 244)),
    )
    assert album.html.endswith('<a href="?q=%23groovy">#groovy</a>')


def test_reply_edited_hidden_links_and_preview(shared):
    post = page(shared, "channel-page-swiftui_dev-before-262.html", "swiftui_dev").posts[4]

    assert (post.post_id, post.reply_to, post.reply_to_url, post.edited) == (248, 179, "https://t.me/swiftui_dev/179", True)
    assert post.link_preview == {
        "url": "https://github.com/c-villain/YandexMapsMobile",
        "site": "GitHub",
        "title": "GitHub - c-villain/YandexMapsMobile: Yandex Maps Mobile full Swift package",
        "description": "Yandex Maps Mobile full Swift package. Contribute to c-villain/YandexMapsMobile development by creating an account on GitHub.",
    }
    assert {(link.kind, link.url) for link in post.links} == {
        ("hidden", "https://github.com/c-villain/YandexMapsMobile"),
        ("hidden", "https://github.com/c-villain/YandexMapsMobileLite"),
        ("preview", "https://github.com/c-villain/YandexMapsMobile"),
    }
    assert "Patched Yandex maps" not in post.text  # the quoted reply is not this post's text


def test_poll(shared):
    post = page(shared, "channel-page-swiftui_dev-before-262.html", "swiftui_dev").posts[11]

    assert post.text is None
    assert post.media == (
        {
            "type": "poll",
            "question": "А какую архитектуру вы используете на текущем проекте?\n\nWhat’s your current project architecture?",
            "poll_type": "Anonymous Poll",
            "options": [
                {"text": "UDF (TCA, Redux, MVI, …)", "percent": 12},
                {"text": "MVx (MVVM, MVC, …)", "percent": 68},
                {"text": "Clean Architecture (Clean swift, VIPER, … )", "percent": 12},
                {"text": "Other", "percent": 7},
            ],
            "voters": 212,
        },
    )


FRAGMENTS = {
    "parse_audio_document.html": dict(post_id=12, text="Povo hebreu", media=({"type": "document", "title": "AUD-20130329-WA0000", "extra": "portadosfundos", "kind": "audio"},)),
    "parse_audio_message.html": dict(post_id=13, media=({"type": "voice", "duration": 1},)),
    "parse_emoji_message.html": dict(post_id=7, text="👍"),
    "parse_forwarded_text_message.html": dict(post_id=89, text=";)", forwarded_from="Some user", forwarded_from_url="https://t.me/some_user"),
    "parse_location_message.html": dict(post_id=10, media=({"type": "location", "latitude": -23.930587176407, "longitude": -44.086305367818},)),
    "parse_multimedia_message.html": dict(post_id=84, text="Multiple videos and pictures", views=436600, grouped_id=84, media=(
        {"type": "video", "post_id": 84, "duration": 27}, {"type": "photo", "post_id": 85},
        {"type": "video", "post_id": 86, "duration": 8}, {"type": "photo", "post_id": 87})),
    "parse_photo_multiple.html": dict(post_id=14, text="Multiple pics", grouped_id=14, media=({"type": "photo", "post_id": 14}, {"type": "photo", "post_id": 15})),
    "parse_photo_single.html": dict(post_id=16, text="Picture by telegram camera", media=({"type": "photo"},)),
    "parse_round_video_single.html": dict(post_id=17, media=({"type": "round_video", "duration": 5},)),
    "parse_service_message_channel_created.html": dict(post_id=1, text="Channel created", service=True, views=None),
    "parse_service_message_channel_name_changed.html": dict(post_id=2, text="Channel name was changed to «tchan's test channel»", service=True, views=None),
    "parse_service_message_channel_photo_updated.html": dict(post_id=3, text="Channel photo updated", service=True, views=None, media=({"type": "photo"},)),
    "parse_service_message_pinned.html": dict(post_id=92, text="tchan's test channel 👍 pinned «Going to pin this message»", service=True, views=None),
    "parse_signed_edited_text_message.html": dict(post_id=5, text="Hello! Signed and edited message", author="Álvaro Justen", edited=True),
    "parse_sticker_message.html": dict(post_id=9, media=({"type": "sticker"},)),
    "parse_text_message_multiline.html": dict(post_id=62, text="Bigger\ntext\nmessage\nnumber\n34"),
    "parse_text_message_signed_not_edited.html": dict(post_id=79, text="Signed and not edited", author="Álvaro Justen"),
    "parse_text_reply_to_video.html": dict(post_id=20, text="Reply to a video (not recorded in telegram)", reply_to=19, reply_to_url="https://t.me/tchantest/19"),
    "parse_unsigned_text_message.html": dict(post_id=6, text="Unsigned message"),
    "parse_video_single.html": dict(post_id=18, text="Video by telegram camera", media=({"type": "video", "duration": 6},)),
    "parse_video_single_2.html": dict(post_id=19, media=({"type": "video", "duration": 27},)),
}


@pytest.mark.parametrize("name", sorted(FRAGMENTS))
def test_fragment(shared, name):
    post = only_post(shared, "fragments/" + name)
    expected = {"views": 2, "edited": False, "service": False, "media": (), "links": (), "text": None,
                "author": None, "forwarded_from": None, "forwarded_from_url": None, "reply_to": None,
                "reply_to_url": None, "grouped_id": None, "link_preview": None} | FRAGMENTS[name]
    actual = {key: getattr(post, key) for key in expected}
    assert actual == expected
    assert post.date is not None and post.date.startswith("2023-02-24T")


def test_links_with_and_without_preview(shared):
    no_preview = only_post(shared, "fragments/parse_text_message_link_no_preview.html")
    right_preview = only_post(shared, "fragments/parse_text_message_link_with_right_preview.html")

    assert no_preview.links == (Link("https://brasil.io/", "https://brasil.io/", "text", "brasil.io"),)
    assert right_preview.links == (
        Link("https://python.org/", "https://python.org/", "text", "python.org"),
        Link("https://www.python.org/", "https://www.python.org/", "preview", "www.python.org"),
    )
    assert right_preview.link_preview["title"] == "Welcome to Python.org"


def test_big_video_from_another_channel(shared):
    post = only_post(shared, "fragments/parse_video_big.html")
    assert (post.post_id, post.views, post.date) == (5343, 436600, "2023-01-30T23:30:40Z")
    assert post.media == ({"type": "video", "duration": 52, "too_big": True},)


def test_weird_preview_hidden_links_keep_their_order(shared):
    post = only_post(shared, "fragments/parse_message_weird_preview.html")
    assert post.edited and post.views == 1200
    hidden = [link.url for link in post.links if link.kind == "hidden"]
    assert hidden == ["http://bit.ly/3Tq1C4G", "http://bit.ly/3PCX1vn", "http://bit.ly/3tkdScB",
                      "http://bit.ly/3A1c4c4", "http://bit.ly/3A3EoKS", "http://bit.ly/3zWxOpw",
                      "https://bit.ly/2UBmLNC"]
    assert post.link_preview["site"] == "Portal da Câmara dos Deputados"


def test_channel_info_and_no_posts(shared):
    info = page(shared, "fragments/channel_info.html").channel
    empty = page(shared, "fragments/parse_no_posts_found.html", "some-channel")

    assert (info.title, info.description, info.subscribers) == ("tchan's test channel 👍", "Test channel for tchan Python library/CLI", 1)
    assert dict(info.counters) == {"subscribers": 1, "photos": 3, "videos": 2, "links": 4}
    assert (empty.posts, empty.has_history) == ((), True)


def test_embed_pages(shared):
    forward = page(shared, "post-forward.html", "iosgr").posts[0]
    album = page(shared, "post-album.html", "iosgr").posts[0]
    poll = page(shared, "post-poll.html", "iosdev").posts[0]

    assert (forward.post_id, forward.date, forward.author, forward.views) == (3996, "2024-05-06T11:01:59Z", "Egor Tolstoy", 5190)
    assert (forward.forwarded_from, forward.forwarded_from_url) == ("Код Воробья для iOS разработчиков", None)
    assert forward.media == ({"type": "photo"},)
    assert [link.url for link in forward.links] == ["https://www.figma.com/@apple"]
    assert album.media == ({"type": "photo", "post_id": 3982}, {"type": "photo", "post_id": 3983})
    assert album.text.startswith("SwiftTUI – SwiftUI для консольных приложений\n\n")
    assert {link.kind for link in album.links} == {"hidden", "mention"}
    assert poll.media[0]["question"] == "Хотели бы что-то изменить в своём наборе гаджетов от Apple?"
    assert len(poll.media[0]["options"]) == 6


def test_our_own_mfa_page_links():
    fixture = Path(__file__).parent / "fixtures" / "mfarussia_page.html"
    result = parse_channel_page(fixture.read_text(encoding="utf-8"), "MFARussia")
    glued, briefing, forward = result.posts

    assert result.channel.subscribers == 1_500_000
    assert result.channel.description == "Официальный канал МИД России\nOfficial channel of the Russian MFA"
    assert [(l.kind, l.url) for l in glued.links] == [
        ("text", "https://mid.ru/en/foreign_policy/news/1982765/"),
        ("text", "https://t.me/MFARussia/22957"),
    ]
    assert [(l.kind, l.url, l.original) for l in briefing.links] == [
        ("hidden", "https://mid.ru/ru/press_service/spokesman/briefings/?id=1984512",
         "https://MID.ru/ru/press_service/spokesman/briefings/?utm_source=telegram&id=1984512&utm_medium=social#comments"),
        ("mention", "https://t.me/MID_Russia", "https://t.me/MID_Russia"),
        ("text", "https://mid.ru/ru/foreign_policy/news/1984500/", "https://mid.ru/ru/foreign_policy/news/1984500/"),
        ("preview", "https://mid.ru/ru/press_service/spokesman/briefings/1984512/",
         "https://mid.ru/ru/press_service/spokesman/briefings/1984512/"),
    ]
    assert (forward.forwarded_from, forward.forwarded_from_url) == ("МИД России", "https://t.me/MID_Russia/41230")
    assert [l.url for l in forward.links] == [
        "https://en.wikipedia.org/wiki/Ministry_of_Foreign_Affairs_(Russia)",
        "https://www.belta.by/politics/view/123.html",
        "http://www.mid.ru/ru/about",
    ]


@pytest.mark.parametrize(
    "html",
    ["", "<html>", "<div class='tgme_widget_message' data-post='x/notanumber'></div>",
     "<div class='tgme_widget_message' data-post='x/5' data-view='!!!'><time datetime='garbage'></time>"
     "<span class='tgme_widget_message_views'>lots</span></div>",
     "<div class='tgme_widget_message' data-post='x/6'><div class='tgme_widget_message_text js-message_text'>"
     "<a href='javascript:alert(1)'>x</a><a href='http://[::1'>y</a></div></div>"],
)
def test_broken_markup_is_missing_fields_not_a_crash(html):
    result = parse_channel_page(html, "x")
    assert all(isinstance(p, Post) for p in result.posts)


def test_a_page_signature_ignores_counters_and_tokens_and_nothing_else(shared):
    from monitor.sources.webpreview import page_signature

    page = (shared / "corpus" / "durov-2026-08.html").read_bytes()
    assert b'class="tgme_reaction">' in page and b"data-view=" in page and b"counter_value" in page
    reactions = (b'</tg-emoji>7.76K</span>', b'icon-telegram-stars"></i>2.49K</span>')  # one emoji, one paid
    assert all(reaction in page for reaction in reactions)
    reloaded = (page.replace(b'_views">', b'_views">9').replace(b'data-view="', b'data-view="x')
                .replace(b'counter_value">', b'counter_value">1')
                .replace(reactions[0], b'</tg-emoji>7.8K</span>').replace(reactions[1], b'icon-telegram-stars"></i>2.5K</span>'))
    assert page_signature(reloaded) == page_signature(page)
    first_text = page.index(b'tgme_widget_message_text') + 60
    edited = page[:first_text] + b"X" + page[first_text + 1:]
    assert page_signature(edited) != page_signature(page)


# Single-post pages as t.me served them about 2018 (written by us after the markup the
# issue describes: no data-post; the post's id only in the date's link).
OLD_EMBED = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>Telegram Widget</title></head>
<body class="widget_frame_base tgme_widget body_widget_post emoji_image">
<div class="tgme_widget_message js-widget_message" data-view="eyJjIjotMTAwMTM1">
 <div class="tgme_widget_message_user"><a href="https://t.me/K1inUSA"><i class="tgme_widget_message_user_photo"></i></a></div>
 <div class="tgme_widget_message_bubble">
  <div class="tgme_widget_message_author"><a class="tgme_widget_message_owner_name" href="https://t.me/K1inUSA">
   <span dir="auto">Kl</span></a></div>
  {body}
  <div class="tgme_widget_message_footer"><div class="tgme_widget_message_info">
   <span class="tgme_widget_message_views">1.2K</span><span class="tgme_widget_message_meta">
   <a class="tgme_widget_message_date" href="https://t.me/K1inUSA/3"><time datetime="2018-03-01T10:00:00+00:00">
   10:00</time></a></span></div></div>
 </div>
</div>
</body></html>
"""
NOT_SUPPORTED = """<div class="message_media_not_supported_wrap"><div class="message_media_not_supported">
  <div class="message_media_not_supported_label">{label}</div>
  <a href="https://t.me/K1inUSA/3" class="message_media_view_in_telegram">VIEW IN TELEGRAM</a></div></div>"""


def test_an_old_single_post_page_without_data_post_takes_the_id_from_its_date_link():
    from monitor.sources.tme_parse import parse_document
    from monitor.sources.webpreview import PostCheck, parse_embed

    html = OLD_EMBED.format(body='<div class="tgme_widget_message_text js-message_text" dir="auto">Привет</div>')
    [post] = parse_document(html, "K1inUSA").posts
    assert (post.post_id, post.text, post.date, post.views) == (3, "Привет", "2018-03-01T10:00:00Z", 1200)
    assert parse_embed(html, 3) is PostCheck.EXISTS
    assert parse_embed(html, 4) is PostCheck.UNKNOWN


def test_an_old_single_post_page_showing_a_service_message_or_view_in_telegram():
    from monitor.sources.tme_parse import parse_document

    [service] = parse_document(OLD_EMBED.format(body=NOT_SUPPORTED.format(label="Service message")), "K1inUSA").posts
    assert (service.service, service.text, service.media) == (True, None, ())
    [hidden] = parse_document(OLD_EMBED.format(body=NOT_SUPPORTED.format(
        label="This media is not supported in your browser")), "K1inUSA").posts
    assert (hidden.service, hidden.text, hidden.media) == (False, None, ({"type": "unviewable"},))


def test_a_url_telegram_shortened_for_display_is_its_full_address_not_a_hidden_link():
    from tmeserver import synthetic_post

    from monitor.sources.links import is_autolink
    from monitor.sources.tme_parse import parse_document

    long = "https://mid.ru/ru/foreign_policy/news/1984500/?utm_source=telegram&utm_medium=channel"
    html = synthetic_post("MFARussia", 7, text=f'Заявление: <a href="{long}" target="_blank" rel="noopener">'
                                               'https://mid.ru/ru/foreign_policy/news/1984…</a>')
    [post] = parse_document(html, "MFARussia").posts
    [link] = post.links  # the full address, not a hidden link; and not what the text shows of it ("…/1984")
    assert link.kind == "text" and link.url.startswith("https://mid.ru/ru/foreign_policy/news/1984500/")
    assert is_autolink("https://mid.ru/ru/foreign_policy/news/1984...", long)
    assert not is_autolink("здесь…", long) and not is_autolink("https://t.me/other…", long)
