"""What every benchmark shares: the result row, paths, and the loopback t.me of the tests."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the loopback t.me the tests use

from tmeserver import SHARED, FakeChannel, FakeTelegram, synthetic_post  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures"
__all__ = ["FIXTURES", "ROOT", "SHARED", "FakeChannel", "FakeTelegram", "Row", "synthetic_page", "synthetic_post"]


@dataclass(frozen=True, slots=True)
class Row:
    """One figure, its reference measured in the same run, and how they compare."""

    name: str
    value: float
    unit: str
    reference: str
    reference_value: float | None
    verdict: str


def synthetic_page(posts: int) -> str:
    """A channel page in t.me's markup, written by us, with ``posts`` posts carrying links."""
    channel = FakeChannel("bench_channel", page_size=posts)
    for post_id in range(1, posts + 1):
        channel.add(post_id, text=f"Заявление {post_id}: <a href=\"https://mid.ru/ru/foreign_policy/news/{post_id}/\" "
                                  f"onclick=\"return confirm('Open this link?')\">здесь</a> #tag https://t.me/x/{post_id}")
    return channel.render(None)
