"""The same statement elsewhere: near-duplicate posts across channels, found as posts are saved.

A post's text becomes the set of its word 3-grams (words folded as search folds them). Its
signature is a one-permutation MinHash: each 3-gram hashed once (BLAKE2b, 64 bits) into one of
SIGNATURE_BINS bins, the smallest value kept per bin, empty bins filled from their neighbour
(optimal densification: Li, Owen and Zhang 2012; Shrivastava 2017). That costs one hash per
3-gram where classic MinHash (datasketch's) costs one per 3-gram and permutation, and estimates
the same Jaccard similarity (bench/echoes.py measures both). The signature's BANDS bands of
ROWS values each are hashed into ``echo_bands``: posts sharing a band are candidates (LSH); a
candidate whose compact signature (``echo_signatures``, a byte a bin) estimates it far off is
left, and each other's similarity is computed exactly from the two texts. A pair at or above
EDITED_REPOST is kept in ``echo_pairs`` (both ways), with its kind; an edit drops the post's old
bands and pairs and finds them anew. Echoes are between channels (a channel repeating its own
words is not one), and the work a post costs is bounded: BAND_READ posts read a band,
MAX_CANDIDATES compared.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from storage.words import fold

SHINGLE_WORDS = 3
SIGNATURE_BINS = 64
BANDS, ROWS = 16, 4  # a pair of similarity 0.5 shares a band with probability 0.64; 0.7: 0.98
MIN_WORDS = 25  # shorter posts (a headline, "Фото", a link) are not statements to follow, and echo alike
REPOST = 0.9  # Jaccard of 3-grams at or above: the same text (a repost without a forward)
EDITED_REPOST = 0.5  # at or above: the same statement with changes; below: not an echo
MAX_CANDIDATES = 20  # posts one post is compared with (the most shared bands first)
BAND_READ = 64  # posts read of one band: the rest of a band that many share (boilerplate) is not read
SURE_REPOST = 0.98  # signatures agreeing this much: the texts are not compared word by word
WORD = re.compile(r"\w+")
URL = re.compile(r"(?i)\b(?:https?://|www\.)\S+")
ESTIMATE_FLOOR = 0.3  # candidates whose signatures agree in fewer bins than this are not compared
MASK63 = (1 << 63) - 1
MASK64 = (1 << 64) - 1
# Odd 64-bit multipliers (from the splitmix64 and xxHash constants) that mix a band's values into its key.
MIX = (0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9)


@dataclass(frozen=True, slots=True)
class Echo:
    """One post that carries the statement, seen from the post asked about."""

    channel: str
    post_id: int
    date: str | None
    kind: str  # this post, forward, repost, edited repost, same release
    similarity: float | None


def shingles(text: str | None) -> set[bytes]:
    """The word 3-grams of ``text`` (folded words, links left out: a URL is not the statement),
    as bytes; empty for a text under MIN_WORDS words."""
    words = [fold(word) for word in WORD.findall(URL.sub(" ", text or ""))]
    if len(words) < MIN_WORDS:
        return set()
    return {" ".join(words[i:i + SHINGLE_WORDS]).encode() for i in range(len(words) - SHINGLE_WORDS + 1)}


def signature(grams: Iterable[bytes]) -> list[int]:
    """The one-permutation MinHash of a set of 3-grams; [] for an empty set. An empty bin takes
    the value of a donor bin chosen by a hash of (bin, attempt), the same for every post
    (optimal densification): neighbouring empty bins do not copy one value, so bands stay
    independent however short the text."""
    bins: list[int | None] = [None] * SIGNATURE_BINS
    for gram in grams:
        value = int.from_bytes(hashlib.blake2b(gram, digest_size=8).digest(), "big")
        slot, rest = value % SIGNATURE_BINS, value // SIGNATURE_BINS
        if bins[slot] is None or rest < bins[slot]:  # type: ignore[operator]
            bins[slot] = rest
    if all(b is None for b in bins):
        return []
    filled: list[int] = []
    for slot, found in enumerate(bins):
        attempt, chosen = 0, found
        while chosen is None:
            attempt += 1
            chosen = bins[_DONORS[slot][attempt % len(_DONORS[slot])]] if attempt < MAX_DONOR_TRIES else next(
                b for b in bins if b is not None)
        filled.append(chosen & MASK63)
    return filled


def _donors(slot: int) -> list[int]:
    """The bins an empty bin borrows from, in order: a fixed pseudo-random sequence of its own."""
    return [int.from_bytes(hashlib.blake2b(f"{slot}:{attempt}".encode(), digest_size=4).digest(), "big")
            % SIGNATURE_BINS for attempt in range(MAX_DONOR_TRIES)]


MAX_DONOR_TRIES = 64
_DONORS = [_donors(slot) for slot in range(SIGNATURE_BINS)]


def band_keys(values: Sequence[int]) -> list[int]:
    """The LSH keys of a signature: one per band, each band of ROWS bins spread over the
    signature (bins b, b + BANDS, ...), mixed into a signed 64-bit SQLite integer."""
    keys = []
    for band in range(BANDS):
        key = (band + 1) * MIX[0]
        for row, value in enumerate(values[band::BANDS][:ROWS]):
            key = ((key ^ value) * MIX[row + 1]) & MASK64
        keys.append(key - (1 << 64) if key >= 1 << 63 else key)
    return keys


def estimate(a: bytes, b: bytes) -> float:
    """The Jaccard similarity two compact signatures estimate (one byte a bin: 1/256 of the bins
    agree by chance, corrected for)."""
    if len(a) != len(b) or not a:
        return 0.0
    agree = sum(x == y for x, y in zip(a, b, strict=True)) / len(a)
    return max(0.0, (agree - 1 / 256) / (1 - 1 / 256))


def jaccard(a: set[bytes], b: set[bytes]) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0


def echo_kind(similarity: float) -> str | None:
    if similarity >= REPOST:
        return "repost"
    if similarity >= EDITED_REPOST:
        return "edited repost"
    return None


def index_echoes(db: sqlite3.Connection, channel_id: int, texts: Sequence[tuple[int, str | None, str | None]],
                 now: str) -> int:
    """Index posts of ``channel_id`` just written: ``(post_id, new text, text before)`` each (the
    text before is None for a post new to the archive). Their old bands and pairs go; their new
    bands are stored and compared with the archive's. Part of saving posts; returns the pairs found."""
    found = 0
    for post_id, text, before in texts:
        if before is not None:
            _forget(db, channel_id, post_id, before)
        grams = shingles(text)
        values = signature(grams)
        if not values:
            continue
        keys = band_keys(values)
        compact = bytes(value & 0xFF for value in values)
        shared: Counter[tuple[int, int]] = Counter()
        for key in keys:  # a band that thousands of posts share (a channel's boilerplate) is read no further
            shared.update((c, p) for c, p in db.execute(
                # in the key's order: the rows SQLite reads anyway, and PostgreSQL reads them by the index
                # even before it has statistics of a table filling up in one backfill
                "SELECT channel_id, post_id FROM echo_bands WHERE band_key = ? "
                "ORDER BY band_key, channel_id, post_id LIMIT ?", (key, BAND_READ))
                if c != channel_id)  # elsewhere: a channel repeating itself is not an echo
        candidates = [(c, p, db.execute("SELECT signature FROM echo_signatures WHERE channel_id = ? AND post_id = ?",
                                        (c, p)).fetchone()) for (c, p), _ in shared.most_common(MAX_CANDIDATES)]
        db.executemany("INSERT OR IGNORE INTO echo_bands (band_key, channel_id, post_id) VALUES (?, ?, ?)",
                       [(key, channel_id, post_id) for key in keys])
        db.execute("INSERT OR REPLACE INTO echo_signatures (channel_id, post_id, signature) VALUES (?, ?, ?)",
                   (channel_id, post_id, compact))
        for other_channel, other_post, other_signature in candidates:
            guess = estimate(compact, other_signature[0]) if other_signature is not None else 0.0
            if guess < ESTIMATE_FLOOR:
                continue  # shares a band by chance (boilerplate): not worth reading its text
            if guess >= SURE_REPOST:
                similarity = guess  # the same text: its estimate is as good as a count
            else:
                row = db.execute("SELECT text FROM posts WHERE channel_id = ? AND post_id = ?",
                                 (other_channel, other_post)).fetchone()
                similarity = jaccard(grams, shingles(row[0])) if row else 0.0
            kind = echo_kind(similarity)
            if kind is None:
                continue
            db.executemany(
                """INSERT INTO echo_pairs (channel_id, post_id, echo_channel_id, echo_post_id, kind, similarity, found_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (channel_id, post_id, echo_channel_id, echo_post_id) DO UPDATE SET
                       kind = excluded.kind, similarity = excluded.similarity, found_at = excluded.found_at""",
                [(channel_id, post_id, other_channel, other_post, kind, round(similarity, 3), now),
                 (other_channel, other_post, channel_id, post_id, kind, round(similarity, 3), now)])
            found += 1
    return found


def _forget(db: sqlite3.Connection, channel_id: int, post_id: int, before: str) -> None:
    """A post's bands (from its text before an edit) and its pairs, both ways."""
    grams = shingles(before)
    if grams:
        db.executemany("DELETE FROM echo_bands WHERE band_key = ? AND channel_id = ? AND post_id = ?",
                       [(key, channel_id, post_id) for key in band_keys(signature(grams))])
    db.execute("DELETE FROM echo_signatures WHERE channel_id = ? AND post_id = ?", (channel_id, post_id))
    partners = db.execute("SELECT echo_channel_id, echo_post_id FROM echo_pairs WHERE channel_id = ? AND post_id = ?",
                          (channel_id, post_id)).fetchall()
    db.executemany("DELETE FROM echo_pairs WHERE channel_id = ? AND post_id = ? AND echo_channel_id = ? "
                   "AND echo_post_id = ?", [(c, p, channel_id, post_id) for c, p in partners])
    db.execute("DELETE FROM echo_pairs WHERE channel_id = ? AND post_id = ?", (channel_id, post_id))


KIND_ORDER = ("forward", "repost", "edited repost", "same release")  # the strongest tie names a pair
# A t.me post's address (a forward's origin; a link in a post's text): channel and id.
TELEGRAM_POST = re.compile(r"(?i)^https?://(?:www\.)?(?:t\.me|telegram\.me)/(?:s/)?([a-z][a-z0-9_]{2,31})/(\d{1,18})"
                           r"(?:[/?].*)?$")
SAME_RELEASE_SQL = """
SELECT l2.channel_id, l2.post_id FROM links l1 JOIN pages g1 ON g1.url = l1.url JOIN links l2 ON l2.url = g1.url
WHERE l1.channel_id = :channel_id AND l1.post_id = :post_id
UNION
SELECT l2.channel_id, l2.post_id FROM links l1 JOIN pages g1 ON g1.url = l1.url
JOIN pages g2 ON g2.release_id = g1.release_id JOIN links l2 ON l2.url = g2.url
WHERE l1.channel_id = :channel_id AND l1.post_id = :post_id AND g1.release_id IS NOT NULL
"""


def find_echoes(db: sqlite3.Connection, channel: str, post_id: int) -> list[Echo] | None:
    """Where else the statement of a post appeared, the first appearance first, the post itself
    among them (``this post``); None when the archive holds no such post. Kinds: ``forward``
    (either way), ``repost`` and ``edited repost`` (by similarity), ``same release`` (the posts
    link the same page, or another language version of its release)."""
    own = db.execute("""SELECT c.id, c.username, p.date, p.forwarded_from_url FROM posts p
                        JOIN channels c ON c.id = p.channel_id
                        WHERE c.username = ? COLLATE NOCASE AND p.post_id = ?""", (channel, post_id)).fetchone()
    if own is None:
        return None
    channel_id, username, date, forwarded_from = own
    ties: dict[tuple[int, int], tuple[str, float | None]] = {}

    def tie(key: tuple[int, int], kind: str, similarity: float | None = None) -> None:
        if key != (channel_id, post_id) and (key not in ties or
                                              KIND_ORDER.index(kind) < KIND_ORDER.index(ties[key][0])):
            ties[key] = (kind, similarity if similarity is not None else ties.get(key, (kind, None))[1])

    for other_channel, other_post, kind, similarity in db.execute(
            "SELECT echo_channel_id, echo_post_id, kind, similarity FROM echo_pairs WHERE channel_id = ? AND post_id = ?",
            (channel_id, post_id)):
        tie((other_channel, other_post), kind, similarity)
    for other_channel, other_post in db.execute(
            "SELECT channel_id, post_id FROM posts WHERE lower(forwarded_from_url) IN (?, ?) "
            "AND forwarded_from_url IS NOT NULL",  # (the partial index's condition, said so that it is used)
            (f"https://t.me/{username}/{post_id}".lower(), f"https://t.me/s/{username}/{post_id}".lower())):
        tie((other_channel, other_post), "forward")
    if forwarded_from and (origin := TELEGRAM_POST.match(forwarded_from)):
        row = db.execute("""SELECT p.channel_id, p.post_id FROM posts p JOIN channels c ON c.id = p.channel_id
                            WHERE c.username = ? COLLATE NOCASE AND p.post_id = ?""",
                         (origin[1], int(origin[2]))).fetchone()
        if row is not None:
            tie((row[0], row[1]), "forward")
    for other_channel, other_post in db.execute(SAME_RELEASE_SQL, {"channel_id": channel_id, "post_id": post_id}):
        tie((other_channel, other_post), "same release")
    echoes = [Echo(username, post_id, date, "this post", None)]
    for (other_channel, other_post), (kind, similarity) in ties.items():
        row = db.execute("""SELECT c.username, p.date FROM posts p JOIN channels c ON c.id = p.channel_id
                            WHERE p.channel_id = ? AND p.post_id = ?""", (other_channel, other_post)).fetchone()
        if row is not None:
            echoes.append(Echo(row[0], other_post, row[1], kind, similarity))
    return sorted(echoes, key=lambda e: (e.date or "", e.channel.lower(), e.post_id))


def get_amplification(db: sqlite3.Connection) -> list[dict[str, object]]:
    """The ``amplification`` view's edges, most posts first."""
    cursor = db.execute("SELECT channel, amplifies, kind, posts, first_at, last_at FROM amplification "
                        "ORDER BY posts DESC, lower(channel), lower(amplifies), kind")
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor]


BACKLOG_CHUNK = 2_000  # archived posts indexed in one transaction


def index_backlog(db: sqlite3.Connection, now: str, limit: int = BACKLOG_CHUNK) -> tuple[int, int]:
    """Index up to ``limit`` posts archived before the echo index existed (``echo_backlog``);
    returns (posts indexed now, posts left). Call inside a transaction."""
    row = db.execute("SELECT done_to, up_to FROM echo_backlog").fetchone()
    if row is None or row[0] >= row[1]:
        return 0, 0
    done_to, up_to = row
    posts = db.execute("SELECT rowid, channel_id, post_id, text FROM posts WHERE rowid > ? AND rowid <= ? "
                       "ORDER BY rowid LIMIT ?", (done_to, up_to, limit)).fetchall()
    for _, channel_id, post_id, text in posts:
        index_echoes(db, channel_id, [(post_id, text, text)], now)  # its own text as "before": no old copy stays
    reached = posts[-1][0] if posts else up_to
    db.execute("UPDATE echo_backlog SET done_to = ?", (reached if len(posts) == limit else up_to,))
    left = db.execute("SELECT count(*) FROM posts WHERE rowid > ? AND rowid <= ?", (reached, up_to)).fetchone()[0]
    return len(posts), left if len(posts) == limit else 0
