"""Every SQL example in the README runs against a real archive."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from helpers import connect_archive
from tmeserver import FIXTURES

from monitor.daemon.service import archive_channels

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
QUERIES = re.findall(r"```sql\n(.*?)```", README, re.S)
# Each query as PostgreSQL runs it: the ```postgresql block that follows it, or the query itself.
BLOCKS = re.findall(r"```(sql|postgresql)\n(.*?)```", README, re.S)
POSTGRES_QUERIES = [(sql, BLOCKS[i + 1][1] if i + 1 < len(BLOCKS) and BLOCKS[i + 1][0] == "postgresql" else sql)
                    for i, (kind, sql) in enumerate(BLOCKS) if kind == "sql"]


def test_the_readme_has_example_queries():
    assert len(QUERIES) >= 6


async def readme_archive(tme, make_config):
    """The archive the README's queries are tried on: posts linking pages, a photo, an alert rule,
    an edit, a deletion, a changed page."""
    channel = tme.channel("MFARussia")
    release = (FIXTURES / "sites" / "midru_current.html").read_text(encoding="utf-8")
    for post_id in range(1, 26):
        channel.add(post_id, text=f"Лавров о хартии {post_id} https://mid.ru/ru/{post_id}/")
        tme.site("mid.ru").page(f"/ru/{post_id}/", release)
    photo = "https://cdn4.telesco.pe/file/meeting.jpg"  # a post with a photo, for the media queries
    channel.add(3, text=f"Встреча <a class=\"tgme_widget_message_photo_wrap\" style=\"background-image:url('{photo}')\"></a>")
    tme.site("cdn4.telesco.pe").page("/file/meeting.jpg", b"\xff\xd8 a photo \xff\xd9", content_type="image/jpeg")
    config = make_config("MFARussia", extra='\n[[alerts.rules]]\nname = "charter"\nkeywords = ["Lavrov"]\n')
    await archive_channels(config, ["MFARussia"], mode="backfill")
    channel.add(25, text="Lavrov on the charter https://mid.ru/ru/25/", edited=True)
    channel.delete(24)
    tme.site("mid.ru").page("/ru/25/", release.replace("Ровно год назад", "Два года назад"))
    with connect_archive(config.database) as conn:
        conn.execute("UPDATE pages SET status = 'pending' WHERE url LIKE '%/25/'")
    await archive_channels(config, ["MFARussia"], mode="sync")
    return config


def any_date(sql: str) -> str:
    """The query with its example dates moved back: the test's posts are of today."""
    return sql.replace("'2024-11-01'", "'2000-01-01'").replace("'2024-05-01'", "'2000-01-01'")


@pytest.mark.parametrize("sql", QUERIES, ids=[q.split("\n")[0][:40] for q in QUERIES])
async def test_readme_query_runs(tme, make_config, sql):
    config = await readme_archive(tme, make_config)
    with connect_archive(config.database) as conn:
        result = conn.execute(any_date(sql)).fetchall()
    assert result, sql


# Every `legation ...` line of the README's shell examples, run as written against a loopback
# archive (only the config path is ours). Those that run until stopped or ask for a phone
# number have tests of their own.
COMMANDS = [line.strip() for block in re.findall(r"```sh\n(.*?)```", README, re.S)
            for line in block.splitlines() if line.strip().startswith("legation ")]
RUN_ELSEWHERE = {
    "run": "runs until stopped: tests/test_daemon.py",
    "login": "asks for a phone number and a code: tests/test_account.py",
    "browse": "serves until stopped: tests/test_browser.py and tests/test_daily_use.py",
}
FINDS_SOMETHING = ("search", "history", "export", "alerts")


def _words(line: str) -> list[str]:
    """The command's arguments as a shell splits them, its comment and [optional] parts left out."""
    return [word for word in shlex.split(line, comments=True)[1:] if not re.fullmatch(r"\[.*\]", word)]


def test_the_readme_has_example_commands():
    assert len(COMMANDS) >= 20 and {_words(c)[-1] for c in COMMANDS if "run" in c} >= {"run"}


@pytest.mark.parametrize("line", COMMANDS, ids=[c[len("legation "):][:60] for c in COMMANDS])
def test_readme_command_runs(line, tme, write_config, tmp_path, monkeypatch, request):
    from click.testing import CliRunner

    from monitor.cli.main import cli
    from monitor.config.settings import load_config

    words = _words(line)
    if "-c" in words:
        del words[words.index("-c"):words.index("-c") + 2]
    command = next(w for w in words if w in cli.commands)
    if command in RUN_ELSEWHERE:
        pytest.skip(RUN_ELSEWHERE[command])
    redirect = words[words.index(">") + 1] if ">" in words else None
    if redirect:
        words = words[:words.index(">")]
    monkeypatch.chdir(tmp_path)
    if command in ("init", "add"):
        result = CliRunner().invoke(cli, ["-c", str(tmp_path / "legation.toml"), *words], catch_exceptions=False)
        assert result.exit_code == 0, (line, result.output)
        return
    config = _archive_for_examples(tme, write_config, tmp_path)
    if command == "copy-archive":  # into the tests' PostgreSQL (no TLS on loopback), from the example archive
        postgres = request.getfixturevalue("pg_url")
        words = [postgres if w.startswith("postgresql://") else str(load_config(config).database)
                 if w.endswith(".sqlite3") else w for w in words]
    if command == "verify" and any(w.endswith(".wacz") for w in words):  # the citation `cite` wrote before
        wacz = next(w for w in words if w.endswith(".wacz"))
        assert CliRunner().invoke(cli, ["-c", str(config), "stamp"]).exit_code == 0
        assert CliRunner().invoke(cli, ["-c", str(config), "cite", "MFARussia", "22958", "--out", wacz]).exit_code == 0
    result = CliRunner().invoke(cli, ["-c", str(config), *words], catch_exceptions=False)
    assert result.exit_code == 0, (line, result.output)
    if redirect:
        (tmp_path / redirect).write_text(result.stdout, encoding="utf-8")
    if command in FINDS_SOMETHING:
        output = result.stdout + "".join(p.read_text(encoding="utf-8") for p in tmp_path.glob("*.csv"))
        assert output.strip() and "no match" not in output, (line, result.output)


def _archive_for_examples(tme, write_config, tmp_path: Path) -> Path:
    """MFARussia with posts the examples look for (dated May 2024), backfilled, then edited; a
    time-stamping authority whose root is tsa-root.pem."""
    from datetime import UTC, datetime, timedelta

    from tsa import TestTSA

    authority = TestTSA()
    tme.site("tsa.example").dynamic = authority.answer
    authority.write_root(tmp_path / "tsa-root.pem")

    channel = tme.channel("MFARussia")
    texts = {
        22950: "Министр С.В.Лавров провёл переговоры",
        22955: 'Проект "Eurasian charter": хартия евразийской безопасности',
        22956: "Die Charta der Vereinten Nationen",
        22958: 'Заявление о хартии <a href="https://mid.ru/ru/foreign_policy/news/1944000/" '
               'onclick="return confirm(1)">здесь</a>',
    }
    start = datetime(2024, 5, 10, tzinfo=UTC)
    for post_id, text in texts.items():
        channel.add(post_id, text=text, start=start - timedelta(hours=post_id) + timedelta(hours=post_id - 22950))
    # and one of today, which alerts (a backfill of old posts is an archive, not news)
    channel.add(22960, text="Хартия одобрена", start=datetime.now(UTC) - timedelta(hours=22960 + 1))
    release = (FIXTURES / "sites" / "midru_current.html").read_text(encoding="utf-8")
    tme.site("mid.ru").page("/ru/foreign_policy/news/1944000/", release)
    config = write_config("MFARussia", extra='\n[[alerts.rules]]\nname = "charter"\nkeywords = ["хартия"]\n'
                                             'language = "ru"\n'
                                             f'[evidence]\ntsa = ["https://tsa.example/tsr"]\n'
                                             f'tsa_ca = "{tmp_path / "tsa-root.pem"}"\n')
    from click.testing import CliRunner

    from monitor.cli.main import cli
    assert CliRunner().invoke(cli, ["-c", str(config), "backfill"]).exit_code == 0
    channel.add(22958, text=texts[22958].replace("Заявление", "Новое заявление"), edited=True,
                start=start - timedelta(hours=22958) + timedelta(hours=8))
    assert CliRunner().invoke(cli, ["-c", str(config), "sync"]).exit_code == 0
    return config
