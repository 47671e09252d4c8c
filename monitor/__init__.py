"""legation's monitor: sources, fetching, the sync round and the command line."""

from __future__ import annotations

__version__ = "0.1.0"


def install_command(extra: str) -> str:
    """A command that installs what ``legation[extra]`` brings into the environment this legation
    runs in, wherever it was installed from (legation is not on PyPI: ``pip install
    'legation[browse]'`` finds nothing, and ``'.[browse]'`` works only in a checkout)."""
    import shlex
    import sys
    from importlib import metadata

    try:
        requires = metadata.requires("legation") or []
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        requires = []
    wanted = [r.split(";")[0].strip() for r in requires
              if r.replace('"', "'").split(";")[-1].strip() == f"extra == '{extra}'"]
    python = sys.executable or "python3"
    return f"{shlex.quote(python)} -m pip install " + " ".join(shlex.quote(r) for r in wanted or [extra])
