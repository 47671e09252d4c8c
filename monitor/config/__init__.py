"""Configuration: the TOML schema as frozen records (``settings``) and the value checkers (``checks``); imports only ``monitor.errors`` and ``monitor.log``."""
