"""A run under a memory cap: an address-space limit (``ulimit -v``, ``RLIMIT_AS``) too small
to start is refused before anything is registered, and running out of memory is one line.

Under a cap, loading a compiled library (numba's ``libllvmlite.so``) or a large allocation
fails with errors that do not say "memory" (``OSError: Could not find/load shared object``);
:func:`check_address_space` refuses a cap below :data:`MIN_ADDRESS_SPACE` at once and
:func:`out_of_memory` turns an allocation failure into a :class:`~tsm_core.errors.TSMError`.
"""

from __future__ import annotations

import resource

from tsm_core.errors import TSMError

#: the smallest address space (virtual memory) a run starts with: Python, pandas, pyarrow,
#: Dask and numba's compiler mapped in (a small run needs about 1.2 GiB)
MIN_ADDRESS_SPACE = 3 * 2**29


def _gib(size: int) -> str:
    return f"{size / 2**30:.1f} GiB"


def address_space_limit() -> int | None:
    """This process's address-space limit in bytes (``RLIMIT_AS``, soft), or None when unlimited."""
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    return None if soft == resource.RLIM_INFINITY else int(soft)


def check_address_space() -> None:
    """Refuse a run whose address-space limit is below :data:`MIN_ADDRESS_SPACE`, in one line."""
    limit = address_space_limit()
    if limit is not None and limit < MIN_ADDRESS_SPACE:
        raise TSMError(
            f"the address-space limit of this process (ulimit -v) is {_gib(limit)}; a run needs at least "
            f"{_gib(MIN_ADDRESS_SPACE)}: raise the limit (or run where memory is not capped)"
        )


def out_of_memory(exc: BaseException) -> TSMError | None:
    """``exc`` as a one-line "out of memory" error, if it is an allocation failure (a
    ``MemoryError``, Arrow's ``ArrowMemoryError``, a library that could not be mapped under a
    cap); None for any other error."""
    mapping_failed = isinstance(exc, OSError) and "shared object" in str(exc) and address_space_limit() is not None
    if not (isinstance(exc, MemoryError) or type(exc).__name__ == "ArrowMemoryError" or mapping_failed):
        return None
    limit = address_space_limit()
    cap = f" (the address-space limit, ulimit -v, is {_gib(limit)})" if limit is not None else ""
    return TSMError(f"out of memory{cap}: give the run more memory, or fewer workers or a smaller catalog")
