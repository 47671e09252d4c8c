"""The evidence chain: a capture round chains what it saved; `legation verify` passes, then
each tampering with the archive makes it fail, naming what broke."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest
from click.testing import CliRunner
from helpers import connect_archive, delete_archive, drop_guard, rows
from test_pages import CURRENT, fixture

from monitor.cli.main import cli
from monitor.daemon.service import archive_channels


@pytest.fixture
async def captured(tme, make_config):
    """MFARussia: post 1 linking a release page, post 2 edited, post 3 deleted."""
    tme.site("mid.ru").page("/ru/foreign_policy/news/1944000/", fixture("midru_current.html"))
    channel = tme.channel("MFARussia")
    channel.add(1, text=f'Заявление <a href="{CURRENT}">здесь</a>')
    channel.add(2, text="Первая редакция")
    channel.add(3, text="Будет удалено")
    config = make_config("MFARussia")
    await archive_channels(config, ["MFARussia"], mode="backfill")
    channel.add(2, text="Вторая редакция", edited=True)
    channel.delete(3)
    await archive_channels(config, ["MFARussia"], mode="recheck")
    return config


def verify(config) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["-c", str(config.source), "verify"], catch_exceptions=False)
    return result.exit_code, result.output


async def test_a_capture_is_chained_and_verifies(captured):
    code, output = await asyncio.to_thread(verify, captured)
    assert code == 0, output
    with connect_archive(captured.database) as conn:
        kinds = [row[0] for row in conn.execute("SELECT kind FROM evidence_chain ORDER BY seq")]
    assert kinds[0] == "genesis"
    assert sorted(kinds[1:]) == ["deletion", "page", "post", "post", "post", "post"]  # post 2 twice
    assert "intact" in output


@pytest.mark.parametrize(("tamper", "named"), [
    ("UPDATE posts SET text = 'Подделка' WHERE post_id = 1", "post 1/1 version 1 was changed"),
    ("DELETE FROM post_history WHERE post_id = 2", "post 1/2 version 1 was captured"),
    ("UPDATE post_events SET at = '2020-01-01T00:00:00Z' WHERE kind = 'deleted'", "the deletion of post 1/3"),
    ("UPDATE page_versions SET text = text || ' (исправлено)'", "page https://mid.ru/ru/foreign_policy/news/1944000/ "
                                                                 "version 1 was changed"),
    ("INSERT INTO post_history (channel_id, post_id, version, text, seen_at, content_hash, edited) "
     "SELECT channel_id, post_id, 0, 'вставка', version_seen_at, 'x', 0 FROM posts WHERE post_id = 1",
     "post 1/1 version 0 is in the archive but not in the chain"),
])
async def test_each_tampering_fails_verify_naming_what_broke(captured, tamper, named):
    with connect_archive(captured.database) as conn:
        conn.execute(tamper)
    code, output = await asyncio.to_thread(verify, captured)
    assert code == 1 and named in output, output


async def test_the_chain_itself_is_append_only_and_reordering_it_is_found(captured):
    with connect_archive(captured.database) as conn:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("DELETE FROM evidence_chain WHERE seq = 2")
        drop_guard(conn, "evidence_chain")  # as someone who means it would
        conn.execute("UPDATE evidence_chain SET seq = -seq WHERE seq IN (2, 3)")
        conn.execute("UPDATE evidence_chain SET seq = 3 WHERE seq = -2")
        conn.execute("UPDATE evidence_chain SET seq = 2 WHERE seq = -3")
    code, output = await asyncio.to_thread(verify, captured)
    assert code == 1 and "chain record 2 does not follow the record before it" in output, output


async def test_a_media_file_changed_on_disk_fails_verify(tme, make_config):
    from test_media import MEDIA, cdn, photo

    cdn(tme)
    tme.channel("MFARussia").add(1, text="Photo" + photo("photo1.jpg"))
    config = make_config("MFARussia", extra=MEDIA)
    await archive_channels(config, ["MFARussia"], mode="backfill")
    assert (await asyncio.to_thread(verify, config))[0] == 0
    with connect_archive(config.database) as conn:
        [(path,)] = conn.execute("SELECT path FROM media_files").fetchall()
        assert conn.execute("SELECT count(*) FROM evidence_chain WHERE kind = 'media'").fetchone() == (1,)
    (config.media_dir / path).write_bytes(b"\xff\xd8 another picture \xff\xd9")
    code, output = await asyncio.to_thread(verify, config)
    assert code == 1 and f"media file {path} was changed after it was captured" in output, output


# --- RFC 3161 time-stamps, from a time-stamping authority on loopback ------------------------------

TSA_URL = "https://tsa.example/tsr"


@pytest.fixture
def authority(tme, tmp_path):
    """A time-stamping authority behind the loopback server; its root in tsa-root.pem."""
    from tsa import TestTSA

    tsa = TestTSA()
    tme.site("tsa.example").dynamic = tsa.answer
    tsa.write_root(tmp_path / "tsa-root.pem")
    return tsa


def with_tsa(tmp_path, stamp_interval: str = "1h") -> str:
    return (f'\n[evidence]\ntsa = ["{TSA_URL}"]\ntsa_ca = "{tmp_path / "tsa-root.pem"}"\n'
            f'stamp_interval = "{stamp_interval}"\n')


def legation_cli(config, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["-c", str(config.source), *args], catch_exceptions=False)
    return result.exit_code, result.output


def stamps(config) -> list[tuple]:
    with connect_archive(config.database) as conn:
        return conn.execute("SELECT id, seq, hash, gen_time, signer FROM evidence_stamps ORDER BY id").fetchall()


async def test_stamps_cover_the_chain_and_a_down_authority_blocks_nothing(tme, make_config, authority, tmp_path):
    channel = tme.channel("MFARussia")
    channel.add(1, text="Заявление МИД России")
    config = make_config("MFARussia", extra=with_tsa(tmp_path))
    authority.down = True
    await archive_channels(config, ["MFARussia"], mode="backfill")
    code, output = await asyncio.to_thread(legation_cli, config, "stamp")
    assert code == 1 and "tsa.example/tsr: HTTP 503" in output and "0 time-stamp(s) made" in output, output
    assert stamps(config) == []
    code, output = await asyncio.to_thread(legation_cli, config, "status")
    assert "evidence: 2 chain record(s)" in output, output
    channel.add(2, text="Второе заявление")  # capture goes on while the authority is down
    await archive_channels(config, ["MFARussia"], mode="sync")

    authority.down = False
    code, output = await asyncio.to_thread(legation_cli, config, "stamp")
    assert code == 0 and "1 time-stamp(s) made" in output, output
    [(_, seq, record_hash, gen_time, signer)] = stamps(config)
    with connect_archive(config.database) as conn:
        assert tuple(conn.execute("SELECT seq, hash FROM evidence_chain ORDER BY seq DESC LIMIT 1").fetchone()) == (
            seq, record_hash)
    assert signer == "CN=Loopback Test TSA" and gen_time.endswith("Z")
    asked = authority.requests
    code, output = await asyncio.to_thread(legation_cli, config, "stamp")  # nothing captured since
    assert code == 0 and "1 authority(ies) already current" in output and authority.requests == asked

    channel.add(2, text="Второе заявление, исправленное", edited=True)
    await archive_channels(config, ["MFARussia"], mode="sync")
    assert (await asyncio.to_thread(legation_cli, config, "stamp"))[0] == 0
    assert len(stamps(config)) == 2
    code, output = await asyncio.to_thread(verify, config)
    assert code == 0 and "time-stamps: 2" in output and "by CN=Loopback Test TSA" in output, output
    code, output = await asyncio.to_thread(legation_cli, config, "status")
    assert f"newest time-stamp {stamps(config)[-1][3]} by https://tsa.example/tsr" in output, output


async def test_an_authoritys_password_is_never_printed(tme, make_config, authority, tmp_path):
    tme.channel("MFARussia").add(1, text="Заявление")
    extra = with_tsa(tmp_path).replace("https://tsa.example/tsr", "https://newsroom:s3cr3t-pw@tsa.example/tsr")
    config = make_config("MFARussia", extra=extra)
    await archive_channels(config, ["MFARussia"], mode="backfill")
    # the connection cut mid-answer: the client's own error names the URL it was given
    tme.site("tsa.example").dynamic = lambda *request: (200, {"X-Cut": "5"}, b"x" * 100)
    code, output = await asyncio.to_thread(legation_cli, config, "stamp")
    assert code == 1 and "s3cr3t-pw" not in output, output
    runs = rows(config.database, "SELECT group_concat(error) FROM runs")[0][0] or ""
    assert "s3cr3t-pw" not in runs
    tme.site("tsa.example").dynamic = authority.answer
    assert (await asyncio.to_thread(legation_cli, config, "stamp"))[0] == 0
    assert [row[0] for row in rows(config.database, "SELECT tsa FROM evidence_stamps")] == [
        "https://tsa.example/tsr"]


def test_status_says_when_captures_have_waited_too_long_for_a_time_stamp(make_config, tmp_path, authority):
    from datetime import UTC, datetime

    from monitor.daemon.health import stamps_problem
    from storage.evidence import EvidenceState

    config = make_config("MFARussia", extra=with_tsa(tmp_path, stamp_interval="1h"))
    now = datetime(2026, 12, 7, 12, tzinfo=UTC)
    waiting = EvidenceState(10, 4, "2026-12-07T08:00:00Z", "https://tsa.example/tsr", "2026-12-07T09:30:00Z")
    assert stamps_problem(waiting, config, now) is None  # 2.5 hours: within three intervals
    late = EvidenceState(10, 4, "2026-12-07T07:00:00Z", "https://tsa.example/tsr", "2026-12-07T08:00:00Z")
    assert "have no time-stamp" in stamps_problem(late, config, now.replace(hour=12, minute=1))
    current = EvidenceState(10, 10, "2026-12-07T07:00:00Z", "https://tsa.example/tsr", None)
    assert stamps_problem(current, config, now) is None


async def test_a_stored_token_verifies_with_openssl_alone(tme, make_config, authority, tmp_path):
    """The token is a standard one: OpenSSL's own `ts -verify` accepts it for the record's hash."""
    import shutil
    import subprocess

    if shutil.which("openssl") is None:
        pytest.skip("no openssl command on this machine")
    tme.channel("MFARussia").add(1, text="Заявление")
    config = make_config("MFARussia", extra=with_tsa(tmp_path))
    await archive_channels(config, ["MFARussia"], mode="backfill")
    assert (await asyncio.to_thread(legation_cli, config, "stamp"))[0] == 0
    with connect_archive(config.database) as conn:
        record_hash, token = conn.execute("SELECT hash, token FROM evidence_stamps").fetchone()
    (tmp_path / "record.bin").write_bytes(bytes.fromhex(record_hash))
    (tmp_path / "token.tsr").write_bytes(token)
    checked = subprocess.run(["openssl", "ts", "-verify", "-data", tmp_path / "record.bin", "-in",
                              tmp_path / "token.tsr", "-CAfile", tmp_path / "tsa-root.pem"],
                             capture_output=True, text=True)
    assert checked.returncode == 0 and "Verification: OK" in checked.stdout, checked.stdout + checked.stderr
    (tmp_path / "record.bin").write_bytes(bytes.fromhex("00" * 32))  # and refuses another hash
    checked = subprocess.run(["openssl", "ts", "-verify", "-data", tmp_path / "record.bin", "-in",
                              tmp_path / "token.tsr", "-CAfile", tmp_path / "tsa-root.pem"],
                             capture_output=True, text=True)
    assert checked.returncode != 0


async def test_the_daemon_stamps_by_itself_and_retries_a_down_authority(tme, make_config, authority, tmp_path,
                                                                         monkeypatch):
    from monitor.evidence import tsa as tsa_module
    from monitor.evidence.tsa import Stamper

    tme.channel("MFARussia").add(1, text="Заявление")
    config = make_config("MFARussia", extra=with_tsa(tmp_path))
    await archive_channels(config, ["MFARussia"], mode="backfill")
    monkeypatch.setattr(tsa_module, "FIRST_RETRY", 0.3)  # a minute in the field
    from monitor.daemon.service import tsa_client
    from storage.db import open_archive

    authority.down = True
    async with open_archive(config.database) as conn, tsa_client(config) as client:
        stamper = Stamper(conn, client, config.evidence)
        assert (await stamper.run())["failed"] == 1
        asked = authority.requests
        assert (await stamper.run())["failed"] == 0 and authority.requests == asked  # not hammered
        authority.down = False
        await asyncio.sleep(0.4)
        assert (await stamper.run())["stamped"] == 1
        assert (await stamper.run()) == {"stamped": 0, "failed": 0, "current": 1}

    # and `legation run` asks by itself, at its start, for an archive captured before it, never stamped
    from helpers import read_only, wait_for
    from test_daemon import legation

    from monitor.config.settings import load_config

    text = config.source.read_text(encoding="utf-8").replace(str(config.database), str(tmp_path / "daemon.sqlite3"))
    (tmp_path / "daemon.toml").write_text(text, encoding="utf-8")
    daemon_config = load_config(tmp_path / "daemon.toml")
    await archive_channels(daemon_config, ["MFARussia"], mode="backfill")
    daemon = legation(daemon_config.source, "run")
    try:
        await asyncio.to_thread(wait_for, lambda: read_only(daemon_config.database,
                                                                 "SELECT id FROM evidence_stamps"), 60)
    finally:
        daemon.terminate()
        daemon.wait(timeout=30)
    [(_, seq, record_hash, _, _)] = stamps(daemon_config)
    assert seq > 1  # the genesis record and the post's at least


@pytest.mark.parametrize(("tamper", "named"), [
    # the token of the first stamp put in place of the second's: it signs an older record's hash
    ("UPDATE evidence_stamps SET token = (SELECT token FROM evidence_stamps WHERE id = 1) WHERE id = 2",
     "by https://tsa.example/tsr signs another hash than the chain record's"),
    ("UPDATE evidence_stamps SET gen_time = '2020-01-01T00:00:00Z' WHERE id = 2",
     "says 20"),
    ("UPDATE evidence_stamps SET token = CAST(substr(token, 1, length(token) - 3) || x'000000' AS BLOB) WHERE id = 2",
     "time-stamp 2 of chain record"),
])
async def test_a_tampered_time_stamp_fails_verify(tme, make_config, authority, tmp_path, tamper, named, engine):
    channel = tme.channel("MFARussia")
    channel.add(1, text="Заявление")
    config = make_config("MFARussia", extra=with_tsa(tmp_path))
    await archive_channels(config, ["MFARussia"], mode="backfill")
    assert (await asyncio.to_thread(legation_cli, config, "stamp"))[0] == 0
    channel.add(2, text="Второе")
    await archive_channels(config, ["MFARussia"], mode="sync")
    assert (await asyncio.to_thread(legation_cli, config, "stamp"))[0] == 0
    assert (await asyncio.to_thread(verify, config))[0] == 0
    with connect_archive(config.database) as conn:
        drop_guard(conn, "evidence_stamps")
        if engine == "postgresql":  # a blob's bytes changed, in PostgreSQL's words
            tamper = tamper.replace("CAST(substr(token, 1, length(token) - 3) || x'000000' AS BLOB)",
                                    "substr(token, 1, length(token) - 3) || '\\x000000'::bytea")
        conn.execute(tamper)
    code, output = await asyncio.to_thread(verify, config)
    assert code == 1 and named in output, output


async def test_a_token_from_an_authority_nobody_trusts_fails(tme, make_config, authority, tmp_path):
    from tsa import TestTSA

    tme.channel("MFARussia").add(1, text="Заявление")
    config = make_config("MFARussia", extra=with_tsa(tmp_path))
    await archive_channels(config, ["MFARussia"], mode="backfill")
    impostor = TestTSA(name="Impostor TSA")  # answers in its place; its root is not tsa_ca
    tme.site("tsa.example").dynamic = impostor.answer
    code, output = await asyncio.to_thread(legation_cli, config, "stamp")
    assert code == 1 and "does not chain to a trusted root" in output and stamps(config) == [], output


# --- citations: one post as a WACZ, checked alone --------------------------------------------------


def rewritten(path, changes: dict[str, bytes], *, fix_package: bool = True):
    """The WACZ at ``path`` with members replaced; with ``fix_package``, as a careful forger would
    leave it: datapackage.json and its digest recomputed to match."""
    import hashlib
    import json
    import zipfile

    with zipfile.ZipFile(path) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    files.update(changes)
    if fix_package:
        package = json.loads(files["datapackage.json"])
        for resource in package["resources"]:
            data = files[resource["path"]]
            resource["hash"], resource["bytes"] = f"sha256:{hashlib.sha256(data).hexdigest()}", len(data)
        files["datapackage.json"] = json.dumps(package).encode()
        files["datapackage-digest.json"] = json.dumps(
            {"path": "datapackage.json", "hash": f"sha256:{hashlib.sha256(files['datapackage.json']).hexdigest()}"}
        ).encode()
    forged = path.with_name("forged.wacz")
    with zipfile.ZipFile(forged, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return forged


@pytest.fixture
async def cited(tme, make_config, authority, tmp_path):
    """Post 2 of MFARussia (a release page, a photo) stamped, edited, stamped, deleted; cited as a WACZ
    written by `legation cite`; then the archive and its media are deleted."""
    from test_media import MEDIA, cdn, photo

    cdn(tme)
    tme.site("mid.ru").page("/ru/foreign_policy/news/1944000/", fixture("midru_current.html"))
    channel = tme.channel("MFARussia")
    channel.add(1, text="Другое заявление")  # stays: a channel with no post left shows nothing deleted
    channel.add(2, text=f'Заявление <a href="{CURRENT}">здесь</a>' + photo("photo1.jpg"))
    config = make_config("MFARussia", extra=MEDIA + with_tsa(tmp_path))
    await archive_channels(config, ["MFARussia"], mode="backfill")
    assert (await asyncio.to_thread(legation_cli, config, "stamp"))[0] == 0
    channel.add(2, text=f'Заявление, исправленное <a href="{CURRENT}">здесь</a>' + photo("photo1.jpg"), edited=True)
    await archive_channels(config, ["MFARussia"], mode="sync")
    assert (await asyncio.to_thread(legation_cli, config, "stamp"))[0] == 0
    channel.delete(2)
    await archive_channels(config, ["MFARussia"], mode="recheck")
    out = tmp_path / "citation.wacz"
    code, output = await asyncio.to_thread(legation_cli, config, "cite", "https://t.me/MFARussia/2", "--out", str(out))
    assert code == 0 and "5 item(s) (5 in the evidence chain)" in output and "2 time-stamp(s)" in output, output
    import shutil

    delete_archive(config.database)
    shutil.rmtree(config.media_dir)
    bare = tmp_path / "bare.toml"  # a reader's machine: no archive, no [evidence] section
    bare.write_text(f'database = "{tmp_path / "none.sqlite3"}"\n', encoding="utf-8")
    return out, bare


def verify_wacz(config_path, wacz, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["-c", str(config_path), "verify", str(wacz), *args], catch_exceptions=False)
    return result.exit_code, result.output


async def test_a_citation_verifies_offline_with_the_authoritys_root(cited, tmp_path):
    wacz, bare = cited
    code, output = await asyncio.to_thread(verify_wacz, bare, wacz, "--tsa-ca", str(tmp_path / "tsa-root.pem"))
    assert code == 0 and "verdict: holds" in output, output
    assert "citation of https://t.me/MFARussia/2" in output
    for proven in ("post MFARussia/2 version 1: existed by", "post MFARussia/2 version 2: existed by",
                   "page https://mid.ru/ru/foreign_policy/news/1944000/ version 1: existed by",
                   "media file"):
        assert f"ok: {proven}" in output, output
    assert "signed by CN=Loopback Test TSA" in output
    # the deletion was captured after the last stamp: in the chain, and said to be not time-stamped
    assert "ok: the deletion of post 2 confirmed" in output and "not yet time-stamped" in output
    code, output = await asyncio.to_thread(verify_wacz, bare, wacz)  # without the authority's root
    assert code == 1 and "does not chain to a trusted root" in output, output


async def test_a_citation_is_a_valid_wacz_with_its_summary(cited):
    import json
    import subprocess
    import sys
    import zipfile

    wacz, _ = cited
    checked = subprocess.run([sys.executable, "-m", "wacz", "validate", "-f", str(wacz)],
                             capture_output=True, text=True, timeout=120)
    assert checked.returncode == 0 and "Validation succeeded" in checked.stdout, checked.stdout + checked.stderr
    with zipfile.ZipFile(wacz) as archive:
        index = archive.read("indexes/index.cdx").decode()
        pages = [json.loads(line) for line in archive.read("pages/pages.jsonl").decode().splitlines()]
        summary = archive.read("evidence/summary.txt").decode()
    assert index.count("me,t)/mfarussia/2 ") == 2  # both versions, each at the time it was seen
    assert "ru,mid)/ru/foreign_policy/news/1944000/" in index
    assert pages[0]["format"] == "json-pages-1.0" and pages[1]["url"] == "https://t.me/MFARussia/2"
    assert "version 2 (edited)" in summary and "deleted: confirmed" in summary
    assert "openssl ts -verify -data evidence/stamp-1.dat -in evidence/stamp-1.tsr" in summary


async def test_a_forged_citation_fails_naming_what_broke(cited, tmp_path):
    import json
    import zipfile

    wacz, bare = cited
    root = str(tmp_path / "tsa-root.pem")
    with zipfile.ZipFile(wacz) as archive:
        citation = json.loads(archive.read("evidence/citation.json"))
        second_token = archive.read("evidence/stamp-2.tsr")
    citation["items"][0]["fields"]["text"] = "Заявление, которого не было"
    forged = rewritten(wacz, {"evidence/citation.json": json.dumps(citation).encode()})
    code, output = await asyncio.to_thread(verify_wacz, bare, forged, "--tsa-ca", root)
    assert code == 1 and "post MFARussia/2 version 1 differs from what was captured" in output, output

    # a forger who knows the formats: the record rehashed to the new text; the next record's link gives it away
    from monitor.read.cite import content_of
    from storage.evidence import _record_hash

    with zipfile.ZipFile(wacz) as archive:
        chain = [json.loads(line) for line in archive.read("evidence/chain.jsonl").decode().splitlines()]
    record = next(r for r in chain if r["seq"] == citation["items"][0]["record"])
    record["content_hash"] = content_of("post", citation["items"][0]["fields"])
    record["hash"] = _record_hash(record["seq"], record["kind"], record["ref"], record["content_hash"],
                                  record["captured_at"], record["prev_hash"])
    forged = rewritten(wacz, {"evidence/citation.json": json.dumps(citation).encode(),
                              "evidence/chain.jsonl": "".join(json.dumps(r) + "\n" for r in chain).encode()})
    code, output = await asyncio.to_thread(verify_wacz, bare, forged, "--tsa-ca", root)
    assert code == 1 and f"chain record {record['seq'] + 1} does not follow record {record['seq']}" in output, output

    forged = rewritten(wacz, {"evidence/stamp-1.tsr": second_token})  # a token for another record
    code, output = await asyncio.to_thread(verify_wacz, bare, forged, "--tsa-ca", root)
    assert code == 1 and "time-stamp 1 (chain record" in output and "signs another hash" in output, output

    forged = rewritten(wacz, {"evidence/summary.txt": b"nothing to see"}, fix_package=False)
    code, output = await asyncio.to_thread(verify_wacz, bare, forged, "--tsa-ca", root)
    assert code == 1 and "evidence/summary.txt was changed after the package was written" in output, output
