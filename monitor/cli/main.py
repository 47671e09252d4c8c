"""The ``legation`` command group with every command joined to it, and the console-script entry point.

Commands import the machinery they run (sources, service, storage) when they run, so
that ``legation --help`` and ``-V`` answer at once.
"""

from __future__ import annotations

from monitor.cli import archive, capture, evidence, instruments, query, read, room, setup  # noqa: F401 - their commands join the group
from monitor.cli.base import cli

__all__ = ["cli", "main"]


def main() -> None:
    """Console-script entry point. (Output piped into a reader that stops early, ``| head``,
    ends quietly with exit code 1: click's own handling of a broken pipe.)"""
    cli(prog_name="legation")
