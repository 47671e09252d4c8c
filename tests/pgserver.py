"""A throwaway PostgreSQL server for tests and benches: Debian's PostgreSQL (initdb + pg_ctl),
on a loopback port, as an unprivileged user, in a directory of its own; stopped and removed after.

LEGATION_TEST_POSTGRES (a postgresql:// URL of a database the tests may fill and empty) takes its
place where a server is already running.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

PASSWORD = "pg-test-s3cret"  # the archive role's; tests check it is never printed


def server_binaries() -> Path | None:
    """The newest installed PostgreSQL's bin directory, or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parent.parent.name))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _as_user() -> list[str]:
    """initdb and the server refuse to run as root: as ``postgres`` (or nobody) then."""
    if os.geteuid() != 0:
        return []
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return ["runuser", "-u", name, "--"]
    raise RuntimeError("running as root with no postgres or nobody user to run PostgreSQL as")


@contextlib.contextmanager
def throwaway_cluster(tls: Any = None) -> Iterator[str]:
    """A running server with a database ``archive`` owned by role ``legation`` (password
    ``PASSWORD``, scram over TCP); yields its URL. ``tls``: a trustme CA whose certificate for
    127.0.0.1 the server presents (ssl = on)."""
    given = os.environ.get("LEGATION_TEST_POSTGRES")
    if given and tls is None:
        yield given
        return
    binaries = server_binaries()
    if binaries is None:
        raise FileNotFoundError("no PostgreSQL server binaries (apt install postgresql)")
    home = Path(tempfile.mkdtemp(prefix="legation-pg-"))
    data = home / "data"
    prefix = _as_user()
    if prefix:
        user = prefix[2]
        os.chmod(home, 0o755)
        shutil.chown(home, user)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    run = lambda *args: subprocess.run([*prefix, *args], check=True, capture_output=True, text=True)  # noqa: E731
    try:
        run(str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "--auth-local=trust",
            "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8")
        with (data / "postgresql.conf").open("a") as conf:
            conf.write(f"\nlisten_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{home}'\n"
                       "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 60\n")
            if tls is not None:
                served = tls.issue_cert("127.0.0.1")
                served.cert_chain_pems[0].write_to_path(str(data / "server.crt"))
                served.private_key_pem.write_to_path(str(data / "server.key"))
                os.chmod(data / "server.key", 0o600)
                if prefix:
                    for name in ("server.crt", "server.key"):
                        shutil.chown(data / name, prefix[2])
                conf.write("ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n")
        run(str(binaries / "pg_ctl"), "-D", str(data), "-l", str(home / "server.log"), "-w", "-t", "60", "start")
        psql = [str(binaries / "psql"), "-h", str(home), "-p", str(port), "-U", "postgres", "-v", "ON_ERROR_STOP=1"]
        run(*psql, "-c", f"CREATE ROLE legation LOGIN PASSWORD '{PASSWORD}'")
        run(*psql, "-c", "CREATE DATABASE archive OWNER legation")
        yield f"postgresql://legation:{PASSWORD}@127.0.0.1:{port}/archive"
    finally:
        with contextlib.suppress(subprocess.CalledProcessError, FileNotFoundError):
            run(str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        time.sleep(0.1)
        shutil.rmtree(home, ignore_errors=True)


def empty_database(url: str, *, schema: bool = False) -> None:
    """Every table of the database emptied (its ids from 1 again), the migrated schema kept: each test
    starts from an empty archive, at the cost of a TRUNCATE. ``schema``: drop the schema too."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        tables = [row[0] for row in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'schema_migrations'")]
        guarded = conn.execute("SELECT count(*) FROM pg_trigger WHERE tgname LIKE '%%_no_update'").fetchone()[0]
        if schema or not tables or guarded < 2:  # a test that tampered dropped a guard: the schema anew
            conn.execute("DROP SCHEMA public CASCADE")
            conn.execute("CREATE SCHEMA public")
            return
        conn.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
