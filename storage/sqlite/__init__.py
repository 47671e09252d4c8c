"""The SQLite engine: the connection thread, pragmas and checkpoints, the migrator, SQLite's error names; imports only storage.errors and storage.models."""
