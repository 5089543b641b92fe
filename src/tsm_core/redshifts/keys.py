"""The keys of a redshift side, gathered while its rows are read and filtered.

:class:`FilterTally` applies the run's redshift filters batch by batch and counts what each
removed (per survey) for the funnel; :class:`KeyColumns` keeps, of every row left, only its
keys (``_zrow``, ``ra``, ``dec``, ``survey``; with ``quality`` also ``z_flag`` and ``z_err``)
in compact NumPy columns (:func:`key_columns` names them).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from tsm_core.columns import ZROW_COLUMN
from tsm_core.pipeline.funnel import Funnel, survey_counts
from tsm_core.science.filters import Filter


class FilterTally:
    """Applies the redshift filters batch by batch, one at a time, counting (per survey)
    the rows read and what each filter removed; :meth:`record` puts the counts in the funnel."""

    def __init__(self, filters: Sequence[Filter]) -> None:
        self.filters = list(filters)
        self.n_read = 0
        self.read_by_survey: Counter[str] = Counter()
        self.removed = [0] * len(self.filters)
        self.removed_by_survey: list[Counter[str]] = [Counter() for _ in self.filters]

    def apply(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The rows of ``frame`` that pass every filter."""
        surveys = frame["survey"] if "survey" in frame.columns else None
        self.n_read += len(frame)
        self.read_by_survey.update(survey_counts(surveys))
        for i, one in enumerate(self.filters):
            keep = one.mask(frame)
            if not keep.all():
                self.removed[i] += int((~keep).sum())
                if surveys is not None:
                    self.removed_by_survey[i].update(survey_counts(frame["survey"][~keep]))
                frame = frame[keep]
        return frame

    def record(self, funnel: Funnel, dropped: dict[str, int]) -> None:
        """The funnel's first steps: rows read (kept plus bad rows), bad rows, each filter."""
        funnel.total_counts(
            "read", "redshifts read", self.n_read + sum(dropped.values()), dict(sorted(self.read_by_survey.items()))
        )
        funnel.bad_rows(dropped)
        for i, one in enumerate(self.filters):
            funnel.removed_counts(
                f"filter:{one.expression}",
                f"redshift filter {one.expression}",
                self.removed[i],
                dict(sorted(self.removed_by_survey[i].items())),
            )


#: key columns that rank duplicate redshifts (read with ``quality``)
QUALITY_COLUMNS = ("z_flag", "z_err")


def key_columns(present: Iterable[str], quality: bool = False) -> list[str]:
    present = list(present)
    extra = ["survey", *QUALITY_COLUMNS] if quality else ["survey"]
    return [ZROW_COLUMN, "ra", "dec"] + [c for c in extra if c in present]


class KeyColumns:
    """The keys of the scanned batches, column by column in NumPy types, the survey as a
    category (25 bytes a redshift); :meth:`frame` joins them, one column at a time."""

    def __init__(self, keys: list[str]) -> None:
        self.keys = keys
        self.parts: dict[str, list[Any]] = {c: [] for c in keys}

    @staticmethod
    def _dtype(column: str) -> type:
        return np.int64 if column == ZROW_COLUMN else np.float64

    def add(self, frame: pd.DataFrame) -> None:
        for c in self.keys:
            if c == "survey":
                self.parts[c].append(frame[c].astype("category").array)
            elif c in QUALITY_COLUMNS:  # may be missing (null): NaN
                values = pd.to_numeric(frame[c], errors="coerce")
                self.parts[c].append(values.to_numpy(dtype=np.float64, na_value=np.nan))
            else:
                self.parts[c].append(frame[c].to_numpy(dtype=self._dtype(c)))

    def frame(self) -> pd.DataFrame:
        from pandas.api.types import union_categoricals

        columns: dict[str, Any] = {}
        for c in self.keys:
            parts, self.parts[c] = self.parts[c], []  # each column's batches freed once joined
            if c == "survey":
                columns[c] = union_categoricals(parts) if parts else pd.Categorical([])
            else:
                columns[c] = np.concatenate(parts) if parts else np.zeros(0, self._dtype(c))
            del parts
        return pd.DataFrame(columns)
