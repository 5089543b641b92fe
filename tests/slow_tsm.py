"""``python slow_tsm.py ARGS``: the ``tsm`` command with an extra output format
``slow-parquet`` that sleeps ``$TSM_TEST_WRITE_DELAY`` seconds (default 0.3) per batch
it writes, so that tests can signal a run at chosen moments. Each partition's rows are
written as a batch of their own (the run gathers small partitions' rows into one batch
otherwise), so that a small run writes many batches, with a cancel check between them."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import tsm_core  # noqa: E402
from tsm_writers.parquet import ParquetWriter  # noqa: E402


class SlowParquet(ParquetWriter):
    name = "slow-parquet"
    extension = "parquet"

    def open(self, path, schema, metadata, options):
        sink = super().open(path, schema, metadata, options)
        real_write = sink.write
        delay = float(os.environ.get("TSM_TEST_WRITE_DELAY", "0.3"))

        def write(table):
            print(f"writing {table.num_rows}", file=sys.stderr, flush=True)
            time.sleep(delay)
            real_write(table)

        sink.write = write
        return sink


class Plugin:
    @tsm_core.hookimpl
    def tsm_writers(self):
        return [SlowParquet()]


if __name__ == "__main__":
    from tsm_core.pipeline import write as run_write

    run_write.GATHER_ROWS = 1  # this test process only
    tsm_core.get_plugin_manager().register(Plugin(), name="slow-writer")
    from tsm_core.cli.main import main

    sys.argv[0] = "tsm"
    main()
