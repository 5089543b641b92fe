"""Which process runs a product: host, pid and a start token.

A run records the process that owns it, so that a process that is gone (killed, out of
memory, a node lost) can be told apart from a live one, also when its pid was reused by a
later process (the start token differs). The registry records an :class:`Owner` with each
product it starts; output claims record one too.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Owner:
    """The process that runs (or will run) a product."""

    host: str
    pid: int
    token: str | None


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def start_token(pid: int) -> str | None:
    """What tells process ``pid`` apart from a later process given the same pid:
    its start time (and the boot it started in); None if the process does not exist."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        # the command name (field 2) may hold spaces and parentheses: split after the last ')'
        start = stat[stat.rindex(")") + 2 :].split()[19]
        return f"{_boot_id()}:{start}"
    except FileNotFoundError:
        return None
    except (OSError, ValueError, IndexError):
        pass
    try:
        import psutil

        return f"psutil:{psutil.Process(pid).create_time():.3f}"
    except Exception:  # noqa: BLE001 - psutil missing, or no such process
        return None


def current_owner() -> Owner:
    """This process, as recorded in the products it runs."""
    return Owner(socket.gethostname(), os.getpid(), start_token(os.getpid()))


def owner_alive(owner: Owner) -> bool | None:
    """Whether the process of ``owner`` still runs: None if it is on another host (unknown)."""
    if owner.host != socket.gethostname():
        return None
    try:
        os.kill(owner.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by another user
    if owner.token is None:
        return True
    token = start_token(owner.pid)
    return token is None or token == owner.token
