"""The web preview as it really was, 2019–2026: 22 pages captured by others, every post checked.

The expected fields are in ../shared/fixtures/tme/corpus/truth.json, read from the HTML by
the people who gathered the corpus (not by running this parser). Pages are given to the
parser as bytes, as they come off the wire: fragments carry no charset and are UTF-8.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tmeserver import SHARED

from monitor.sources.links import normalise_url
from monitor.sources.webpreview import parse_channel_page

CORPUS = SHARED / "corpus"
# Captures that someone re-indented: white space inside text is theirs, so text is compared collapsed.
RAW = {"telegram-1to9-2019-06.html", "spotifynewss-2023-11.html", "habr_com-2026-04.html", "durov-2026-08.html",
       "ducks_poker-2026-08.html", "wohnungenberlin-2026-08.html"}
FIELDS = ("service", "date", "views", "author", "edited", "forwarded_from", "forwarded_from_url", "reply_to")


def truth() -> dict[str, dict]:
    path = CORPUS / "truth.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


@pytest.fixture
def corpus() -> Path:
    if not (CORPUS / "truth.json").is_file():
        pytest.skip(f"the t.me corpus is not at {CORPUS}")
    return CORPUS


@pytest.mark.parametrize("name", sorted(truth()) or ["(corpus absent)"])
def test_every_post_of_the_corpus(corpus, name):
    expected = truth()[name]
    page = parse_channel_page((corpus / name).read_bytes(), expected["username"])

    assert (page.before, page.after) == (expected["before"], expected["after"])
    if expected["channel"]:
        assert (page.channel.title, page.channel.username, page.channel.subscribers) == (
            expected["channel"]["title"], expected["channel"]["username"], expected["channel"]["subscribers"])
    assert [p.post_id for p in page.posts] == [p["post_id"] for p in expected["posts"]]
    assert page.parse_errors == 0
    for post, want in zip(page.posts, expected["posts"], strict=True):
        where = f"{name} post {post.post_id}"
        if name in RAW:
            assert post.text == want["text"], where
        else:
            assert (" ".join((post.text or "").split()) or None) == want["text_norm"], where
        for field in FIELDS:
            assert getattr(post, field) == want[field], (where, field)
        assert [m["type"] for m in post.media if m["type"] != "unviewable"] == want["media"], where
        assert post.unviewable == want["unsupported"], where
        assert (post.grouped_id is not None) == want["album"], where
        assert (post.link_preview or {}).get("url") == want["link_preview"], where
        assert {(link.original, link.kind) for link in post.links if link.kind not in ("preview", "button")} == {
            (link["href"], link["kind"]) for link in want["links"]}, where
        assert [dict(b) for b in post.buttons] == [{"label": b["label"], "url": b["href"]}
                                                   for b in want["inline_buttons"]], where
        assert {link.url for link in post.links if link.kind == "button"} == {
            normalise_url(b["href"]) for b in want["inline_buttons"]}, where
        if want.get("poll"):
            [poll] = post.media
            assert (poll["question"], [o["text"] for o in poll["options"]]) == (
                want["poll"]["question"], want["poll"]["options"]), where
        if want.get("document_title"):
            assert post.media[0]["title"] == want["document_title"], where


def test_the_corpus_cases_the_issue_names(corpus):
    """Read off the HTML by hand: one case of each kind, so that a wrong truth.json cannot hide them."""
    xcareers = {p.post_id: p for p in parse_channel_page((corpus / "xcareers-2020-05.html").read_bytes(),
                                                         "xCareers").posts}
    assert xcareers[1497].buttons == ({"label": "🛎️ Разместить вакансию", "url": "https://xcareers.me/job/"},
                                      {"label": "🗂 Разместить резюме", "url": "https://t.me/xCareersChat"})
    assert [(link.url, link.kind) for link in xcareers[1497].links if link.kind == "button"] == [
        ("https://xcareers.me/job/", "button"), ("https://t.me/xCareersChat", "button")]

    ducks = {p.post_id: p for p in parse_channel_page((corpus / "ducks_poker-2026-08.html").read_bytes(),
                                                      "DUCKS_POKER").posts}
    assert (ducks[295].text, ducks[295].media, ducks[295].views) == (None, ({"type": "unviewable"},), 164)
    assert not ducks[284].unviewable

    durov = {p.post_id: p for p in parse_channel_page((corpus / "durov-2026-08.html").read_bytes(), "durov").posts}
    assert ("https://gram.org/", "hidden") in {(link.url, link.kind) for link in durov[521].links}

    old = parse_channel_page((corpus / "telegram-1to9-2019-06.html").read_bytes(), "telegram")
    assert (old.channel.title, old.channel.subscribers, old.channel.counters["members"]) == (
        "Telegram News", 2_800_000, 2_800_000)
    service = {p.post_id: p for p in old.posts}[2]
    assert (service.text, service.links) == ("Telegram News updated group photo", ())

    fragment = parse_channel_page((corpus / "fragments" / "any2feed-message_poll.html").read_bytes(), "it_begin")
    assert fragment.posts[0].media[0]["question"] == "Как лучше?"  # bytes without a charset are UTF-8
