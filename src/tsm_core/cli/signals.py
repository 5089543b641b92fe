"""How a signal stops a run of the ``tsm`` command.

SIGINT (Ctrl-C) and SIGTERM set the run's cancel token (:func:`stop_on_signals`), planning
waits in a way a signal can interrupt (:func:`interruptible`), and the command exits with
the status a shell reports for the signal (:data:`STOPPED`).
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from tsm_core.errors import RunCancelled

T = TypeVar("T")

#: exit status of a run stopped by a signal (128 + its number, as a shell reports it)
STOPPED: dict[int | None, int] = {signal.SIGINT: 130, signal.SIGTERM: 143}


@contextmanager
def stop_on_signals() -> Iterator[Any]:
    """A cancel token that SIGINT (Ctrl-C) and SIGTERM (``kill``, SLURM's ``scancel``,
    ``timeout``) set, so that a run stops at its next partition, removes its files and
    records its product cancelled (SIGINT) or failed (SIGTERM). A second signal stops
    the process at once (the next `tsm products` listing cleans up). Only the CLI does this:
    the library installs no signal handler."""
    from tsm_core.products.cancel import CancelToken

    token = CancelToken()
    token.signal = None  # type: ignore[attr-defined]
    if threading.current_thread() is not threading.main_thread():
        yield token
        return

    def handler(signum: int, _frame: Any) -> None:
        if token.is_set():  # asked twice: stop now
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        name = signal.Signals(signum).name
        token.signal = signum  # type: ignore[attr-defined]
        if signum == signal.SIGINT:
            token.cancel(f"cancelled by Ctrl-C ({name})", "cancelled")
        else:
            token.cancel(f"interrupted by {name}", "failed")

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield token
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def interruptible(work: Callable[[], T], cancel: Any) -> T:
    """``work()`` in a helper thread while this one waits for it or for ``cancel``: a
    signal stops planning within a fraction of a second even when planning is blocked
    in C code (a hung file system, a pipe), which Python's signal handlers cannot reach.
    Planning registers and writes nothing, so there is nothing to clean up when the
    process leaves the helper behind."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = work()
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
            outcome["error"] = exc

    helper = threading.Thread(target=target, name="tsm-plan", daemon=True)
    helper.start()
    while helper.is_alive():
        helper.join(0.1)
        if cancel.is_set():
            raise RunCancelled(cancel.reason, cancel.status)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


class _Stopped(KeyboardInterrupt):
    """Raised in the main thread by :func:`raise_on_signals`'s handler: a ``KeyboardInterrupt``,
    so that libraries' ``except Exception`` blocks let it through to the ``finally`` blocks
    that remove a command's staging folder."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@contextmanager
def raise_on_signals() -> Iterator[None]:
    """For commands that write without a cancel token (``tsm redshift register``, ``tsm
    import``): SIGINT and SIGTERM raise in the main thread, so that the command's ``finally``
    blocks remove what it staged, and the command ends with one line (``interrupted by
    SIGTERM``) and the status a shell reports for the signal (:data:`STOPPED`). Later signals
    are ignored while it cleans up (SIGKILL still works: the next command sweeps)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: Any) -> None:
        for s in STOPPED:
            if s is not None:
                signal.signal(s, signal.SIG_IGN)
        raise _Stopped(signum)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    except _Stopped as stop:
        name = signal.Signals(stop.signum).name
        error = RunCancelled(f"interrupted by {name}", "failed")
        error.signal = stop.signum  # type: ignore[attr-defined]
        raise error from None
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
