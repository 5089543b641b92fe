"""``python -m tsm_core`` is the ``tsm`` command."""

from tsm_core.cli.main import main

main()
