"""Search in plain words: never a syntax error, stemmed for ru/en/de, exact matches first;
one engine for `search`, `export --query` and the browse view."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from monitor.cli.main import cli
from monitor.read.search import build_query

POSTS = {
    1: "Министр С.В.Лавров провёл переговоры",
    2: "Заявление о Хартии евразийской безопасности",
    3: "Die Charten der Vereinten Nationen",
    4: "Саммит #SCO в Астане https://mid.ru/ru/foreign_policy/news/1982011/",
    5: "Проект хартия обсуждён",
    6: "Евразийской хартии посвящён брифинг",
    7: "Министр провел встречу",
    8: "Der Außenminister sprach",
    9: "An der Strasse",
    10: "Это мой ответ",
    11: "Minister Lawrów",
}


def invoke(config, *args: str):
    return CliRunner().invoke(cli, ["-c", str(config), *args], catch_exceptions=False)


@pytest.fixture
def archive(tme, write_config):
    channel = tme.channel("MFARussia")
    for post_id, text in POSTS.items():
        channel.add(post_id, text=text)
    config = write_config("MFARussia", pages="[pages]\nfollow = []\n")
    assert invoke(config, "backfill").exit_code == 0
    return config


def found(result) -> list[int]:
    return [int(line.split("/")[-1]) for line in result.stdout.splitlines() if not line.startswith(" ")]


@pytest.mark.parametrize(("query", "expected"), [
    ("С.В.Лавров", [1]),  # initials: a phrase of tokens, not FTS5 syntax
    ("хартия", [5, 6, 2]),  # the exact form first, then хартии (stem харт), newest first in each
    ("Charta", [3]),  # Charten
    ("#SCO", [4]),
    ("https://mid.ru/ru/foreign_policy/news/1982011/", [4]),
    ('"евразийской безопасности"', [2]),
    ("провёл", [1, 7]),  # ё as written first, then the same word written with е
    ("провел", [7, 1]),  # and the other way round: one folding, whichever is typed
    ("Aussenminister", [8]),  # ß is ss, as alerts fold it
    ("Strasse", [9]),
    ("Straße", [9]),
    ("мои", []),  # й is a letter of its own, not и with a mark
    ("Lawrow", [11]),
    ('"unclosed', []),
    ("AND OR NOT (", []),
    ("col:x *", []),
])
def test_plain_words_never_fail_and_find_what_ministries_write(archive, query, expected):
    result = invoke(archive, "search", query)
    assert result.exit_code == 0, result.output
    assert found(result) == expected
    assert "Traceback" not in result.output


def test_raw_fts5_on_request_and_its_errors_are_clear(archive):
    result = invoke(archive, "search", "--raw", "Charten OR Лавров")
    assert found(result) == [3, 1]
    bad = invoke(archive, "search", "--raw", '"unclosed')
    assert bad.exit_code == 2 and bad.stderr.startswith("legation: invalid search query '\"unclosed'")


def test_search_until_and_json(archive):
    dates = json.loads(invoke(archive, "search", "хартия", "--json").stdout)
    assert [hit["post_id"] for hit in dates] == [5, 6, 2]
    assert set(dates[0]) == {"kind", "channel", "post_id", "date", "url", "snippet", "exact"}
    assert [hit["exact"] for hit in dates] == [True, False, False]
    assert "[хартия]" in dates[0]["snippet"]
    until = dates[1]["date"]
    result = invoke(archive, "search", "хартия", "--until", until[:19], "--json")
    assert [hit["post_id"] for hit in json.loads(result.stdout)] == [5, 2]  # before post 6, not at it


def test_export_query_uses_the_same_language(archive, tmp_path):
    target = tmp_path / "out.jsonl"
    result = invoke(archive, "export", "--query", "С.В.Лавров", "-o", str(target))
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["post_id"] for line in target.read_text().splitlines()] == [1]
    invoke(archive, "export", "--query", "хартия", "-o", str(target))
    assert [json.loads(line)["post_id"] for line in target.read_text().splitlines()] == [2, 5, 6]


def test_the_query_language():
    query = build_query("хартия")
    assert (query.exact, query.wider) == ('"хартия"', '("хартия" OR "харт"*)')
    assert build_query("С.В.Лавров").exact == '"С В Лавров"' and build_query("С.В.Лавров").wider is None
    assert build_query("Charta", ("de",)).wider == '("Charta" OR "chart"*)'
    assert build_query("Charta", ("ru",)).wider is None  # no Latin language configured: exact only
    assert build_query('a "b c" d"').exact == '"a" AND "b c" AND "d"'
    assert build_query("x OR y", raw=True).exact == "x OR y"
    assert build_query("...").exact == '""'


@pytest.mark.parametrize(("query", "expected"), [
    ("хартия OR Charta", {2, 3, 5, 6}),  # OR keeps the word forms of both sides
    ("хартия OR charter", {2, 3, 5, 6}),  # the README's example (German stems charter as chart: Charten)
    ("хартия NOT проект", {2, 6}),  # NOT leaves out every form: Проект (capital) too
    ("хартия -проект", {2, 6}),
    ('хартия -"проект хартия"', {2, 6}),
    ('"евразийской безопасности" OR Charta', {2, 3}),
    ("Министр провёл OR встречу", {1, 7}),
    ("NOT хартия", set()),  # nothing to find but what is left out: nothing, and no error
    ("хартия OR", {2, 5, 6}),  # an OR with nothing after it joins nothing
])
def test_or_not_and_phrases_keep_word_forms(archive, query, expected):
    result = invoke(archive, "search", query)
    assert result.exit_code == 0, result.output
    assert set(found(result)) == expected


def test_the_readme_export_example_finds_posts(archive, tmp_path):
    target = tmp_path / "charter.jsonl"
    result = invoke(archive, "export", "--query", "хартия OR charter", "--with-pages", "--with-versions",
                    "-o", str(target))
    assert result.exit_code == 0, result.output
    assert sorted(json.loads(line)["post_id"] for line in target.read_text().splitlines()) == [2, 3, 5, 6]


@pytest.mark.parametrize("word", ["Aussenminister", "Außenminister", "Strasse", "Straße", "провел", "провёл",
                                  "мои", "мой", "Lawrow", "Lawrów", "ЛАВРОВ"])
def test_search_and_alerts_fold_alike(archive, word):
    from monitor.alerts.rules import Matcher
    from monitor.config.settings import AlertRule

    matcher = Matcher([AlertRule(name="r", keywords=(word,))])
    alerted = {post_id for post_id, text in POSTS.items() if matcher.match(text)}
    assert set(found(invoke(archive, "search", f'"{word}"'))) == alerted


STOP_LIST = """<html lang="ru"><head><title>Граждане Утопии под санкциями</title></head><body>
<h1>Утопия</h1><h1>Граждане Утопии, находящиеся под персональными санкциями</h1>
<table><tr><td><ol start="7"><li>&nbsp;</li></ol></td><td><p><strong>Иван ЗАБУГОРНЫЙ (Ivan Zabugorny)</strong></p></td>
<td><p>&ndash;</p></td><td><p>министр фантазий Утопии</p></td></tr></table></body></html>"""


async def test_a_word_only_in_a_release_pages_table_is_found_with_the_posts_that_link_it(tme, linking, tmp_path):
    import asyncio

    from monitor.daemon.service import archive_channels

    tme.site("mid.ru").page("/ru/maps/ut/1/", STOP_LIST)
    _, config = linking("https://mid.ru/ru/maps/ut/1/")
    await archive_channels(config, ["MFARussia"], mode="sync")

    def run(*args: str):
        return asyncio.to_thread(CliRunner().invoke, cli, ["-c", str(config.source), *args], catch_exceptions=False)

    found = await run("search", "Забугорного", "--json")  # another form of the name, found by its stem
    [page] = json.loads(found.stdout)
    assert (page["kind"], page["url"], page["title"]) == ("page", "https://mid.ru/ru/maps/ut/1/",
                                                           "Граждане Утопии, находящиеся под персональными санкциями")
    assert page["linked_by"] == [f"{tme.url}/MFARussia/1"] and "[ЗАБУГОРНЫЙ]" in page["snippet"]
    shown = await run("search", "Zabugorny")
    assert shown.stdout.splitlines()[0].endswith("page https://mid.ru/ru/maps/ut/1/  Граждане Утопии, находящиеся "
                                                 "под персональными санкциями")
    assert shown.stdout.splitlines()[-1] == f"    linked by {tme.url}/MFARussia/1"
    target = tmp_path / "out.jsonl"
    exported = await run("export", "--query", "Zabugorny", "--with-pages", "-o", str(target))
    assert exported.exit_code == 0
    [post] = [json.loads(line) for line in target.read_text().splitlines()]
    assert post["post_id"] == 1 and post["pages"][0]["url"] == "https://mid.ru/ru/maps/ut/1/"
