"""legation's monitor: sources, fetching, the sync round and the command line."""

__version__ = "0.1.0"
