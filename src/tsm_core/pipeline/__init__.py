"""One training-set run, as the data flows: plan (:mod:`~tsm_core.pipeline.plan`) ->
match (:mod:`~tsm_core.pipeline.match`) -> select (:mod:`~tsm_core.pipeline.select`) ->
finish and write (:mod:`~tsm_core.pipeline.write`) -> provenance and register
(:mod:`~tsm_core.pipeline.provenance`), told as a narrative in :mod:`tsm_core.pipeline.main`
(``run``, ``prepare``, ``execute``, ``rerun``); and where the redshifts went
(:mod:`tsm_core.pipeline.funnel`).

The public names load on first use, so that importing a part of the pipeline does not
import all of it (and LSDB with it). No submodule is named after a public function.
"""

from typing import Any

_PUBLIC = ("Plan", "RunResult", "execute", "prepare", "rerun", "run")

__all__ = list(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        from tsm_core.pipeline import main

        return getattr(main, name)
    raise AttributeError(f"module 'tsm_core.pipeline' has no attribute {name!r}")
