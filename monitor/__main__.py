"""``python -m monitor`` is ``legation``."""

from monitor.cli import main

main()
