"""Set-up of the worker processes of the local cluster (``compute.scheduler: processes``).

Loaded by each worker as a ``dask.distributed`` preload. The workers are processes of
our own, so this is no side effect on a user's process: they ignore SIGINT (Ctrl-C
reaches the whole process group; the main process then stops the run and closes the
cluster in order, instead of workers dying under it and leaving it waiting), and they
silence the known noise of our dependencies as the CLI does, and the warnings
that stopping a run causes.
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any


def _not_shutdown_noise(record: logging.LogRecord) -> bool:
    # a worker closed while it was sending a heartbeat (the run was stopped) logs a traceback
    return not record.getMessage().startswith("Failed to communicate with scheduler during heartbeat")


def dask_setup(worker: Any) -> None:
    """Called by ``dask.distributed`` in each worker process as it starts."""
    from tsm_core.compute.noise import quiet_known_warnings

    quiet_known_warnings()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    # a stopped run cancels the tasks in flight: the workers' warnings about it are noise;
    # task errors still reach the main process, which reports them
    logger = logging.getLogger("distributed")
    logger.setLevel(logging.ERROR)
    for handler in logger.handlers:
        handler.addFilter(_not_shutdown_noise)
    logging.getLogger("distributed.worker").addFilter(_not_shutdown_noise)
