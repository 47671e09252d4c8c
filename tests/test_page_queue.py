"""The page queue grows as posts are saved: links on followed domains join it with their post,
and a pages round scans the archived links only of a domain followed anew."""

from __future__ import annotations

from helpers import rows

from monitor.daemon.service import archive_channels
from storage.pages import MAX_PAGES_PER_POST

FOLLOW_MIDRU = '\n[pages]\nfollow = ["mid.ru"]\nrequest_delay = "0s"\nmax_per_round = 0\n'
FOLLOW_BOTH = '\n[pages]\nfollow = ["mid.ru", "belta.by"]\nrequest_delay = "0s"\nmax_per_round = 0\n'


def post_linking(*urls: str) -> str:
    return "Заявление " + " ".join(f'<a href="{url}">{n}</a>' for n, url in enumerate(urls))


def queued(config) -> list[str]:
    return [url for (url,) in rows(config.database, "SELECT url FROM pages ORDER BY url")]


async def test_links_join_the_queue_as_their_post_is_saved(tme, make_config):
    channel = tme.channel("MFARussia")
    channel.add(1, text=post_linking("https://mid.ru/ru/1/"))
    config = make_config("MFARussia", pages=FOLLOW_MIDRU)
    first = await archive_channels(config, ["MFARussia"], mode="sync")
    assert first.channels[0].saved.queued_pages == 1 and queued(config) == ["https://mid.ru/ru/1/"]

    channel.add(2, text=post_linking("https://www.mid.ru/en/2/", "https://evil-mid.ru/x", "https://mid.ru.evil.example/x",
                                     "https://eng.belta.by/3/", "https://t.me/MID_Russia/41230"))
    flood = [f"https://mid.ru/ru/flood/{n:02d}/" for n in range(MAX_PAGES_PER_POST + 5)]
    channel.add(3, text=post_linking(*reversed(flood)))  # its first ten are the last ten by address
    report = await archive_channels(config, ["MFARussia"], mode="sync")

    [outcome] = report.channels
    assert report.pages.queued == 0  # no scan: the save queued them
    assert outcome.saved.queued_pages == 1 + MAX_PAGES_PER_POST
    assert queued(config) == ["https://mid.ru/ru/1/",
                              *flood[5:],
                              "https://www.mid.ru/en/2/"]


async def test_a_domain_followed_anew_has_its_archived_links_queued(tme, make_config):
    channel = tme.channel("MFARussia")
    channel.add(1, text=post_linking("https://mid.ru/ru/1/", "https://eng.belta.by/1/"))
    midru, both = make_config("MFARussia", pages=FOLLOW_MIDRU), make_config("MFARussia", pages=FOLLOW_BOTH)
    await archive_channels(midru, ["MFARussia"], mode="sync")
    assert queued(midru) == ["https://mid.ru/ru/1/"]

    followed = await archive_channels(both, ["MFARussia"], mode="sync")
    again = await archive_channels(both, ["MFARussia"], mode="sync")
    assert (followed.pages.queued, again.pages.queued) == (1, 0)
    assert queued(both) == ["https://eng.belta.by/1/", "https://mid.ru/ru/1/"]

    # No longer followed: a link saved meanwhile waits outside the queue until it is followed again.
    channel.add(2, text=post_linking("https://eng.belta.by/2/"))
    await archive_channels(midru, ["MFARussia"], mode="sync")
    assert "https://eng.belta.by/2/" not in queued(midru)
    refollowed = await archive_channels(both, ["MFARussia"], mode="sync")
    assert refollowed.pages.queued == 1 and "https://eng.belta.by/2/" in queued(both)
    assert rows(both.database, "SELECT domain FROM followed_domains ORDER BY domain") == [("belta.by",), ("mid.ru",)]
