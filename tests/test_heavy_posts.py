"""Heavy posts: a post with thousands of followed links cannot starve the page queue, and long
posts always fit the t.me page cap."""

from __future__ import annotations

from helpers import rows

from monitor.daemon.service import archive_channels
from storage.pages import MAX_PAGES_PER_POST


async def test_one_post_queues_a_bounded_number_of_pages_and_the_queue_stays_fair(tme, make_config):
    channel = tme.channel("MFARussia")
    links = " ".join(f'<a href="https://mid.ru/ru/a/{i}/">{i}</a>' for i in range(500))  # sort before the release
    channel.add(1, text=f"Spam {links}")
    channel.add(2, text='Заявление <a href="https://mid.ru/ru/foreign_policy/news/1944000/">здесь</a>')
    config = make_config("MFARussia", extra="\nmax_per_round = 5\n")  # lands in [pages]

    report = await archive_channels(config, ["MFARussia"], mode="backfill")

    assert rows(config.database, "SELECT count(*) FROM links WHERE post_id = 1") == [(500,)]  # all kept as links
    assert rows(config.database, "SELECT count(*) FROM pages") == [(MAX_PAGES_PER_POST + 1,)]
    assert report.channels[0].saved.queued_pages == MAX_PAGES_PER_POST + 1
    fetched = [r for r in tme.requests if r.startswith("//mid.ru/ru/")]
    assert len(fetched) == 5 and "//mid.ru/ru/foreign_policy/news/1944000/" in fetched  # not starved


async def test_long_posts_fit_the_page_cap(tme, make_config):
    channel = tme.channel("MFARussia")
    for post_id in range(1, 21):
        channel.add(post_id, text="Длинный текст " * 30_000)  # about 780 KB each, 15 MB a page
    config = make_config("MFARussia")

    [outcome] = (await archive_channels(config, ["MFARussia"], mode="backfill")).channels

    assert outcome.error is None
    assert rows(config.database, "SELECT count(*) FROM posts") == [(20,)]
