"""The ``tsm`` command line."""

from tsm_core.cli.main import cli, main

__all__ = ["cli", "main"]
