"""Setting up: ``init`` writes a commented config, ``add`` appends channels to it."""

from __future__ import annotations

from pathlib import Path

import click

from monitor.cli.base import EXIT_FAILED, EXIT_USAGE, _fail, cli
from monitor.config.checks import as_channel_name
from monitor.config.settings import DEFAULT_CONFIG_FILE, load_config
from monitor.errors import ConfigError

STARTER = '''# legation configuration, written by `legation init`. Every key is optional; the
# README's Configuration section and config.example.toml list them all.
# Durations: "500ms", "2s", "5m", "1h", "1d". Relative paths: from this file's directory.

# The archive: read it with sqlite3, Datasette (`legation browse`), pandas...
database = "legation.sqlite3"

[pages]
# Release pages to save from the links of posts (subdomains included).
follow = ["mid.ru"]

[network]
# mid.ru's certificate chains to the Russian Trusted Root CA, which most systems
# lack: put that CA in a PEM file and name it here (see the README).
# ca_bundle = "russian_trusted_root_ca.pem"
# proxy = "socks5h://127.0.0.1:9050"

[schedule]
# How often `legation run` polls each channel.
poll_interval = "5m"

# [alerts]
# notify = ["mailto://user:password@example.org"]   # any Apprise URL
# [[alerts.rules]]
# name = "charter"
# keywords = ["хартия", "charter"]
# language = "ru"

# One [[channels]] table per channel (`legation add NAME` appends one).
'''


def _config_path(ctx: click.Context) -> Path:
    return Path(ctx.obj[0] or DEFAULT_CONFIG_FILE)


@cli.command()
@click.argument("channels", nargs=-1)
@click.pass_context
def init(ctx: click.Context, channels: tuple[str, ...]) -> None:
    """Write a commented legation.toml (or -c FILE) following CHANNELS (default: MFARussia).

    Refuses to overwrite an existing file. Then `legation run` archives them.
    """
    path = _config_path(ctx)
    if path.exists():
        _fail(f"{path} exists already; add channels with 'legation add NAME...'", EXIT_FAILED)
    names = _names(channels or ("MFARussia",))
    try:
        path.write_text(STARTER + "".join(_table(name) for name in names), encoding="utf-8")
    except OSError as exc:
        _fail(f"cannot write {path}: {exc.strerror or exc}", EXIT_USAGE)
    click.echo(f"wrote {path}, following {', '.join(names)}; next: legation run (status, search, browse)")


@cli.command()
@click.argument("channels", nargs=-1, required=True)
@click.pass_context
def add(ctx: click.Context, channels: tuple[str, ...]) -> None:
    """Follow CHANNELS (name, @name or t.me link): appended to the config as [[channels]].

    Creates the config with `init`'s defaults when there is none. The running daemon
    picks them up when restarted.
    """
    path = _config_path(ctx)
    names = _names(channels)
    if path.exists():
        try:
            config = load_config(path)
        except ConfigError as exc:
            _fail(f"config error: {exc}", EXIT_USAGE)
        followed = {name.lower() for name in config.channel_names()} if "[[channels]]" in path.read_text(
            encoding="utf-8") else set()
        names = [name for name in names if name.lower() not in followed]
        if not names:
            click.echo("already followed: nothing to add")
            return
        text = path.read_text(encoding="utf-8")
        addition = ("" if text.endswith("\n") else "\n") + "".join(_table(name) for name in names)
    else:
        addition = STARTER + "".join(_table(name) for name in names)
    try:
        with path.open("a", encoding="utf-8") as out:
            out.write(addition)
    except OSError as exc:
        _fail(f"cannot write {path}: {exc.strerror or exc}", EXIT_USAGE)
    try:
        load_config(path)
    except ConfigError as exc:  # cannot happen for names that passed the check; said plainly if it does
        _fail(f"config error after adding: {exc}", EXIT_USAGE)
    click.echo(f"following {', '.join(names)} in {path}")


def _names(channels: tuple[str, ...]) -> list[str]:
    names: list[str] = []
    for index, channel in enumerate(channels):
        try:
            name = as_channel_name(f"channel {index + 1}", channel)
        except ConfigError as exc:
            _fail(str(exc), EXIT_USAGE)
        if name.lower() not in {n.lower() for n in names}:
            names.append(name)
    return names


def _table(name: str) -> str:
    return f'\n[[channels]]\nname = "{name}"\n'
