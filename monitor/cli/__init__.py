"""The command line: the ``legation`` group (``main``) and its commands by theme; may import every other part of monitor, and storage."""
