"""One training-set run, as the data flows: plan -> match -> select -> finish -> write ->
register (:mod:`tsm_core.pipeline.main`), and where the redshifts went
(:mod:`tsm_core.pipeline.funnel`).

The public names load on first use, so that importing a part of the pipeline does not
import all of it (and LSDB with it)."""

from typing import Any

_PUBLIC = ("Plan", "RunResult", "execute", "prepare", "rerun", "run")

__all__ = list(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        from tsm_core.pipeline import main

        return getattr(main, name)
    raise AttributeError(f"module 'tsm_core.pipeline' has no attribute {name!r}")
