"""Whole-program benchmarks against the loopback t.me: backfill, idle sync, daemon at rest."""

from __future__ import annotations

import compileall
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, FakeTelegram, Row


def _config(tmp: Path, tme: FakeTelegram, channels: list[str], extra: str = "", tls: bool = False) -> Path:
    """A config for ``channels`` on the loopback t.me; with ``tls``, https://t.me through it as a
    proxy, the pages served over TLS with a certificate of a private CA (as the tests do)."""
    path = tmp / "bench.toml"
    if tls:
        tme.site("t.me").dynamic = lambda method, path, headers, body: tme.respond(path)[:3]
        web = f'web_url = "https://t.me"\n[network]\nproxy = "{tme.url}"\nca_bundle = "{tme.write_ca(tmp / "ca.pem")}"\n'
    else:
        web = f'web_url = "{tme.url}"\n[network]\n'
    text = (f'database = "{tmp / "bench.sqlite3"}"\n[telegram]\n{web}'
            'request_delay = "0s"\nallow_private_addresses = true\n[pages]\nfollow = []\n'
            '[sync]\nrecheck_posts = 0\n[log]\nlevel = "warning"\n' + extra)
    text += "".join(f'[[channels]]\nname = "{name}"\n' for name in channels)
    path.write_text(text, encoding="utf-8")
    return path


def _compiled() -> None:
    """Byte-code for the checkout's modules, as an installed legation has (pip compiles it):
    with PYTHONDONTWRITEBYTECODE set, every run would compile them anew (about 70 ms)."""
    for package in ("monitor", "storage"):
        compileall.compile_dir(ROOT / package, quiet=1)


def _run(config: Path, *args: str) -> tuple[float, float, float]:
    """Run legation; return (wall seconds, CPU seconds, peak RSS in MB) of that process alone.

    The peak is VmHWM sampled from /proc: ru_maxrss of a child also counts the instant
    between fork and exec, when the child is a copy of this (large) benchmark process.
    """
    _compiled()
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "monitor", "-c", str(config), *args], cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak = 0.0
    while True:
        peak = max(peak, _high_water_mb(process.pid))
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        time.sleep(0.02)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode not in (0,):
        raise RuntimeError(f"legation {' '.join(args)} exited {process.returncode}")
    return time.perf_counter() - start, usage.ru_utime + usage.ru_stime, peak


def _high_water_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError, ValueError):
        pass
    return 0.0


def bench_backfill(sizes: tuple[int, ...]) -> list[Row]:
    rows = []
    for size in sizes:
        tme = FakeTelegram().start()
        try:
            channel = tme.channel("big_channel")
            for post_id in range(1, size + 1):
                channel.add(post_id, text=f"Post {post_id} https://mid.ru/ru/foreign_policy/news/{post_id}/")
            with tempfile.TemporaryDirectory() as tmp:
                config = _config(Path(tmp), tme, ["big_channel"], tls=True)
                wall, cpu, rss = _run(config, "backfill")
                with sqlite3.connect(Path(tmp) / "bench.sqlite3") as conn:
                    stored = conn.execute("SELECT count(*) FROM posts").fetchone()[0]
            assert stored == size, (stored, size)
            per_post = len(tme.page_requests()) / size
        finally:
            tme.stop()
        rows.append(Row(f"backfill {size:,} posts end to end, https through a proxy", size / cpu, "posts/CPU-s",
                        "target", 2000.0, f"{size / wall:,.0f} posts/s wall; {per_post:.4f} requests/post "
                                          f"(floor {1 / 20:.4f}); peak RSS {rss:.0f} MB (< 150)"))
    return rows


def bench_idle_sync(channels: int = 100) -> list[Row]:
    tme = FakeTelegram().start()
    try:
        names = [f"channel_{i:03d}" for i in range(channels)]
        for name in names:
            channel = tme.channel(name)
            for post_id in range(1, 21):
                channel.add(post_id)
        with tempfile.TemporaryDirectory() as tmp:
            config = _config(Path(tmp), tme, names)
            _run(config, "sync")
            tme.requests.clear()
            wall, cpu, _ = _run(config, "sync")
            baseline_wall, baseline_cpu, _ = _run(config, "--version")
        requests = len(tme.page_requests())
    finally:
        tme.stop()
    return [Row(f"idle sync of {channels} channels", requests / channels, "requests/channel", "target", 1.0,
                f"{cpu:.2f} s CPU in all ({cpu - baseline_cpu:.2f} s beyond interpreter start); {wall:.1f} s wall")]


def bench_daemon_idle(channels: int = 50, window: float = 30.0) -> list[Row]:
    tme = FakeTelegram().start()
    try:
        names = [f"idle_{i:02d}" for i in range(channels)]
        for name in names:
            tme.channel(name).add(1)
        with tempfile.TemporaryDirectory() as tmp:
            config = _config(Path(tmp), tme, names, '[schedule]\npoll_interval = "1h"\nrecheck_interval = "1d"\n')
            process = subprocess.Popen([sys.executable, "-m", "monitor", "-c", str(config), "run"], cwd=ROOT,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            database = Path(tmp) / "bench.sqlite3"
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                time.sleep(0.5)
                try:
                    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as conn:
                        if conn.execute("SELECT count(*) FROM runs WHERE outcome IS NOT NULL").fetchone()[0] >= channels:
                            break
                except sqlite3.OperationalError:
                    continue
            before = _cpu(process.pid)
            time.sleep(window)
            idle = _cpu(process.pid) - before
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
    finally:
        tme.stop()
    per_hour = idle * 3600 / window
    return [Row(f"daemon idle, {channels} channels", per_hour, "CPU s/hour", "target", 5.0,
                f"measured over {window:.0f} s between polls")]


def _cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_media(size: int = 1_000) -> list[Row]:
    """Backfill of a channel whose every post has a photo: files kept (the default) vs not."""
    photo = b"\xff\xd8\xff\xc0\x00\x0b\x08\x01\xe0\x02\x80\x01\x01\x11\x00" + os.urandom(30_000) + b"\xff\xd9"
    results: dict[str, tuple[float, float, int, int]] = {}
    for mode, media in (("off", "download = []"), ("on", 'download = ["photos", "thumbnails"]')):
        tme = FakeTelegram().start()
        try:
            site = tme.site("cdn4.telesco.pe")
            channel = tme.channel("photo_channel")
            for post_id in range(1, size + 1):
                name = f"/file/{post_id // 2}.jpg"  # two posts share each picture
                site.page(name, photo[:-8] + (post_id // 2).to_bytes(8, "big"), content_type="image/jpeg")
                channel.add(post_id, text=f'Post {post_id}<a class="tgme_widget_message_photo_wrap" style="'
                                          f"background-image:url('https://cdn4.telesco.pe{name}')\"></a>")
            with tempfile.TemporaryDirectory() as tmp:
                ca = tme.write_ca(Path(tmp) / "ca.pem")
                proxied = f'[network]\nproxy = "{tme.url}"\nca_bundle = "{ca}"\n'
                config = _config(Path(tmp), tme, ["photo_channel"], f"[media]\n{media}\n")
                config.write_text(config.read_text().replace("[network]\n", proxied, 1))
                wall, cpu, _ = _run(config, "backfill")
                files = sum(f.stat().st_size for f in (Path(tmp) / "legation-media").rglob("*.jpg"))
            results[mode] = (wall, cpu, len(tme.requests), files)
        finally:
            tme.stop()
    (off_wall, _, off_requests, _), (on_wall, _, on_requests, files) = results["off"], results["on"]
    return [Row(f"backfill {size:,} posts with a photo each, media kept", size / on_wall, "posts/s",
                "media off", size / off_wall,
                f"{on_requests / size:.2f} requests/post (off: {off_requests / size:.2f}); "
                f"{files / size / 1024:.1f} KB of files/post (two posts share each picture)")]


def bench_releases(releases: int = 50) -> list[Row]:
    """Requests per release with its other languages archived vs only the linked page, and the
    pages job's CPU per page: a channel whose every post links a mid.ru release in Russian; the
    release exists in ru, en, de (the page's switcher links en and de), not in fr and es (404)."""
    body = ("<p>Министр подчеркнул, что документ открыт для всех государств. " * 40) + "</p>"
    results: dict[str, tuple[float, int, int]] = {}
    for mode, pages in (("none", "follow = []"), ("off", 'follow = ["mid.ru"]\ntranslations = false'),
                        ("on", 'follow = ["mid.ru"]\ntranslations = true')):
        tme = FakeTelegram().start()
        try:
            site, channel = tme.site("mid.ru"), tme.channel("releases")
            for number in range(1_900_000, 1_900_000 + releases):
                for lang in ("ru", "en", "de"):
                    switcher = "".join(f'<a href="/{o}/foreign_policy/news/{number}/">{o}</a>'
                                       for o in ("ru", "en", "de") if o != lang)
                    site.page(f"/{lang}/foreign_policy/news/{number}/",
                              f'<html lang="{lang}"><head><title>Release {number}</title></head><body>'
                              f'<nav>{switcher}</nav><div class="photo-content"><h1 class="photo-content__title">'
                              f'Release {number} ({lang})</h1><div class="photo-content__date">14.05.2024 16:10</div>'
                              f'<div class="text article-content">{body}</div></div></body></html>')
                channel.add(number - 1_899_999, text=f'<a href="https://mid.ru/ru/foreign_policy/news/{number}/">'
                                                     "release</a>")
            with tempfile.TemporaryDirectory() as tmp:
                ca = tme.write_ca(Path(tmp) / "ca.pem")
                proxied = f'[network]\nproxy = "{tme.url}"\nca_bundle = "{ca}"\n'
                config = _config(Path(tmp), tme, ["releases"])
                text = config.read_text().replace("[network]\n", proxied, 1)
                text = text.replace("[pages]\nfollow = []\n", f'[pages]\n{pages}\nrequest_delay = "0s"\n'
                                                              "max_per_round = 100000\n")
                config.write_text(text)
                _, cpu, _ = _run(config, "backfill")
            fetched = len([r for r in tme.site_requests("mid.ru") if r != "/robots.txt"])
            results[mode] = (cpu, fetched, len(tme.site_requests("mid.ru")))
        finally:
            tme.stop()
    (none_cpu, _, _), (off_cpu, off_pages, off_requests), (on_cpu, on_pages, on_requests) = (
        results["none"], results["off"], results["on"])
    return [
        Row(f"requests per release, {releases} mid.ru releases, other languages archived", on_requests / releases,
            "requests", "languages off", off_requests / releases,
            "ru linked; en, de exist (2 requests); fr, es answer 404 (2 requests); robots.txt once"),
        Row("pages job CPU per page (fetch, extract in the bounded worker, save)",
            (on_cpu - none_cpu) / on_pages * 1000, "ms", "languages off", (off_cpu - none_cpu) / off_pages * 1000,
            f"{on_pages} pages on, {off_pages} off; CPU of `legation backfill` beyond the same backfill without pages"),
    ]
