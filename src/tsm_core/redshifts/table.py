"""A normalized redshift catalog (:class:`RedshiftTable`) and the types of its columns.

:func:`settle_dtypes` gives every Python-object column one Arrow type; :func:`is_text` and
:func:`string_lengths` describe the text columns for fixed-width output formats.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from tsm_core.config import CANONICAL_REDSHIFT_COLUMNS
from tsm_core.errors import ConfigError
from tsm_core.plugins.records import ColumnInfo

#: columns of :attr:`RedshiftTable.bad` beside the canonical ones: the row in the file, the reason
BAD_ROW_COLUMN, BAD_DETAIL_COLUMN = "row", "detail"


def settle_dtypes(frame: pd.DataFrame) -> pd.DataFrame:
    """Give Python-object columns (booleans with nulls, ...) one Arrow type for the whole
    column, so that every sky partition of it has the same type; all-null ones become text."""
    import pyarrow as pa

    for col in frame.columns:
        if frame[col].dtype != object:
            continue
        try:
            arr = pa.array(frame[col].tolist(), from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            arr = pa.array(frame[col].astype("string").tolist(), type=pa.string())
        if pa.types.is_null(arr.type):
            arr = arr.cast(pa.string())
        frame[col] = pd.Series(arr.to_pandas(types_mapper=pd.ArrowDtype), index=frame.index)
    return frame


@dataclass
class RedshiftTable:
    """A normalized redshift catalog and what was done to make it.

    ``frame`` holds the canonical columns first, then ``z_flag_raw`` where a convention
    homogenized the flag, then every other (scalar) column of the file. ``names`` maps
    the file's column names to their names in ``frame``; ``default_columns`` are the
    non-canonical columns a training set keeps by default (the convention's extras);
    ``dropped`` counts the rows dropped per reason; ``info`` has units and descriptions
    of non-canonical columns where known.
    """

    frame: pd.DataFrame
    source: str
    convention: str
    detected: bool
    n_read: int
    dropped: dict[str, int] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    default_columns: tuple[str, ...] = ()
    info: dict[str, ColumnInfo] = field(default_factory=dict)
    #: rows of the catalog where ``frame`` holds only its columns (a stored catalog's description)
    rows: int | None = None
    #: the dropped rows: their canonical columns as read, ``row`` (0-based in the file) and
    #: ``detail`` (the reason); None where not known (a catalog registered before they were kept)
    bad: pd.DataFrame | None = field(default=None, repr=False)

    @classmethod
    def from_record(
        cls, meta: dict[str, Any], frame: pd.DataFrame, info: dict[str, ColumnInfo], rows: int | None = None
    ) -> RedshiftTable:
        """The table described by ``meta`` (what a stored copy or a snapshot records of it)."""
        return cls(
            frame=frame,
            source=meta["source"],
            convention=meta["convention"],
            detected=meta["detected"],
            n_read=meta["n_read"],
            dropped=meta["dropped"],
            names=meta["names"],
            default_columns=tuple(meta["default_columns"]),
            info=info,
            rows=rows,
        )

    @property
    def canonical(self) -> list[str]:
        """The canonical columns present (always kept)."""
        return [c for c in CANONICAL_REDSHIFT_COLUMNS if c in self.frame.columns]

    def dropped_rows(self) -> pd.DataFrame | None:
        """:attr:`bad` (empty where no row was dropped); None where the dropped rows are unknown."""
        if self.bad is not None:
            return self.bad
        return None if self.dropped else pd.DataFrame()

    def kept_columns(self, keep: Sequence[str] | str | None) -> list[str]:
        """The columns a training set keeps: canonical ones, plus ``keep`` (file or output
        names), ``"all"``, or by default :attr:`default_columns`."""
        if keep is None:
            extra = list(self.default_columns)
        elif keep == "all":
            extra = [c for c in self.frame.columns if c not in CANONICAL_REDSHIFT_COLUMNS]
        else:
            extra = []
            for name in keep:
                out = name if name in self.frame.columns else self.names.get(name)
                if out is None:
                    others = [c for c in self.frame.columns if c not in CANONICAL_REDSHIFT_COLUMNS]
                    raise ConfigError(
                        "redshift_catalog.keep_columns",
                        f"unknown column {name!r}; columns of {self.source}: {', '.join(others) or '(none)'}",
                    )
                extra.append(out)
        return list(dict.fromkeys(self.canonical + extra))

    def summary(self) -> dict[str, object]:
        """What was read, for logs, results and provenance."""
        return {
            "convention": self.convention,
            "convention_detected": self.detected,
            "rows_read": self.n_read,
            "rows_dropped": dict(self.dropped),
            "rows": len(self.frame) if self.rows is None else self.rows,
        }


def file_rows(zrows: Any, bad: pd.DataFrame | None) -> Any:
    """The 0-based rows in the file of the normalized rows ``zrows``, given the dropped rows
    ``bad`` (:meth:`RedshiftTable.dropped_rows`); None where those are unknown."""
    import numpy as np

    zrows = np.asarray(zrows, dtype=np.int64)
    if bad is None:
        return None
    if not len(bad):
        return zrows
    rows = np.sort(bad[BAD_ROW_COLUMN].to_numpy(dtype=np.int64))
    # normalized row k comes after dropped row j when the rows kept before j (rows[j] - j) are at most k
    return zrows + np.searchsorted(rows - np.arange(len(rows)), zrows, side="right")


def is_text(values: pd.Series) -> bool:
    """True for a column of strings (not numbers, not booleans)."""
    return pd.api.types.is_string_dtype(values.dtype) and not pd.api.types.is_numeric_dtype(values.dtype)


def string_lengths(frame: pd.DataFrame) -> dict[str, int]:
    """The longest value of each text column, in UTF-8 bytes (at least 1), for fixed-width formats."""
    import pyarrow as pa
    import pyarrow.compute as pc

    lengths = {}
    for name in frame.columns:
        if is_text(frame[name]):
            text = pa.array(frame[name].astype("string"), type=pa.large_string())
            lengths[str(name)] = max(pc.max(pc.binary_length(text)).as_py() or 0, 1)
    return lengths
