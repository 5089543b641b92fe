"""How the ``tsm`` process ends once its command is done: without the interpreter's teardown.

A normal interpreter exit, after the atexit handlers, frees every object of every module
one by one: for a process that imported pandas, pyarrow, LSDB, Dask, astropy and numba
(the floor of any run) that takes longer than a small training set's whole run after its
imports (about 0.3-0.6 s of CPU on 2 cores, more on a loaded machine), and frees nothing
the operating system would not free at once. :func:`leave` does what an exit must do --
non-daemon threads finished, atexit handlers run (logging flushed, temporary folders
removed, coverage data saved), standard streams flushed -- and then ends the process with
``os._exit``. Only the console script calls it (the library never ends its caller's process);
under a profiler, tracer or debugger (``sys.getprofile``/``sys.gettrace``) the exit is the
normal one, so that ``python -m cProfile -m tsm_core ...`` still prints its report.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
from typing import NoReturn

#: ``TSM_FAST_EXIT=0`` keeps the interpreter's normal teardown (e.g. to look for leaks at exit)
FAST_EXIT_ENV = "TSM_FAST_EXIT"


def exit_code(code: object) -> int:
    """The process status of ``sys.exit(code)``: None is 0, an int itself, anything else
    (a message, printed to stderr by the caller) 1."""
    if code is None:
        return 0
    return code if isinstance(code, int) else 1


def fast_exit_allowed() -> bool:
    """Whether :func:`leave` may skip the teardown: not asked otherwise, and no profiler,
    tracer or debugger watching this process."""
    if os.environ.get(FAST_EXIT_ENV, "1") == "0":
        return False
    return sys.getprofile() is None and sys.gettrace() is None


def _finish_threads() -> None:
    """What the interpreter does first on exit: wake idle thread pools and wait for the
    non-daemon threads (``threading._shutdown``, where this Python has it)."""
    shutdown = getattr(threading, "_shutdown", None)
    if callable(shutdown) and threading.current_thread() is threading.main_thread():
        shutdown()


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):  # a closed pipe (`tsm ... | head`) or stream: nothing left to say
            pass


def leave(code: int, *, wait: bool = True) -> NoReturn:
    """End the process with status ``code`` after the exit's own work, skipping the teardown
    of the interpreter's objects (see the module's docstring).

    ``wait=False`` is for a run stopped while a thread may be stuck in native code: nothing
    is waited for (no thread joined, no atexit handler run), the log and streams are flushed."""
    _flush()
    if wait:
        _finish_threads()
        atexit._run_exitfuncs()  # the handlers a normal exit runs, in the same (reverse) order
    logging.shutdown()
    _flush()
    os._exit(code)
