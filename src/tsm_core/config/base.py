"""What every section model of a run's configuration shares: the strict base model and the
field checks used by more than one section (local paths, finite numbers per band)."""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict

from tsm_core.config.files import path_problem


def _local_path(value: str | None) -> str | None:
    """``value`` unless it cannot be a local path (a URL such as ``s3://...`` passes)."""
    if value is not None and "://" not in value:
        problem = path_problem(value)
        if problem:
            raise ValueError(problem)
    return value


def _finite_values(value: dict[str, float] | None) -> dict[str, float] | None:
    """``value`` unless one of its numbers is NaN or infinite (named with its key)."""
    for band, number in (value or {}).items():
        if not math.isfinite(number):
            raise ValueError(f"{band}: {number} is not a finite number")
    return value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)
