"""``python -m monitor`` is ``legation``."""

from monitor.cli.main import main

main()
