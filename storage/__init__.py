"""SQLite archive: connection, migrations and one function per query; no network, no HTML."""
