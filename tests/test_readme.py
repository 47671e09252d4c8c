"""Every SQL example in the README runs against a real archive."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
from tmeserver import FIXTURES

from monitor.daemon.service import archive_channels

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
QUERIES = re.findall(r"```sql\n(.*?)```", README, re.S)


def test_the_readme_has_example_queries():
    assert len(QUERIES) >= 6


@pytest.mark.parametrize("sql", QUERIES, ids=[q.split("\n")[0][:40] for q in QUERIES])
async def test_readme_query_runs(tme, make_config, sql):
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
    with sqlite3.connect(config.database) as conn:
        conn.execute("UPDATE pages SET status = 'pending' WHERE url LIKE '%/25/'")
    await archive_channels(config, ["MFARussia"], mode="sync")

    with sqlite3.connect(config.database) as conn:
        result = conn.execute(sql.replace("'2024-11-01'", "'2000-01-01'").replace("'2024-05-01'", "'2000-01-01'")).fetchall()
    assert result, sql
