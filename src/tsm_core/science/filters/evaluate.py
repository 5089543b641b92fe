"""Evaluating filters on a frame with vectorized numpy / pandas operations: the values of a
compiled node (numbers, truth with NA as False, comparisons, membership) and the masks
and row filters built from parsed filters."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from tsm_core.science.filters.parsing import Filter


def as_float(values: Any) -> Any:
    if isinstance(values, pd.Series):
        return values.to_numpy(dtype=np.float64, na_value=np.nan)
    return np.asarray(values, dtype=np.float64)


# A compiled node: frame -> values. ``kind`` says what it gives: "bool", "number",
# "literal" or "column" (a column's type is known only from the data).
@dataclass(frozen=True)
class Node:
    evaluate: Callable[[pd.DataFrame], Any]
    kind: str
    #: (column, op, literal) when the node is a pushable ``column op literal`` cut
    pushdown: tuple[str, str, Any] | None = None
    literal: Any = None


def numeric_values(values: Any) -> Any:
    """Columns as float arrays for arithmetic (nullable types' NA become NaN); literals as float64."""
    if isinstance(values, pd.Series):
        if pd.api.types.is_bool_dtype(values.dtype) or not pd.api.types.is_numeric_dtype(values.dtype):
            raise TypeError(f"column {values.name!r} ({values.dtype}) is not numeric")
        return values.to_numpy(dtype=np.float64, na_value=np.nan)
    if isinstance(values, (int, float)) and not isinstance(values, bool):
        return np.float64(values)
    return values


def truth_of(values: Any) -> Any:
    """A boolean numpy array (or scalar) from a comparison or boolean column; NA is False."""
    if isinstance(values, pd.Series):
        if not pd.api.types.is_bool_dtype(values.dtype):
            raise TypeError(f"column {values.name!r} ({values.dtype}) is not boolean")
        return values.to_numpy(dtype=bool, na_value=False)
    if isinstance(values, np.ndarray):
        if values.dtype != bool:
            raise TypeError(f"values of type {values.dtype} are not boolean")
        return values
    if isinstance(values, (bool, np.bool_)):
        return bool(values)
    raise TypeError(f"{values!r} is not boolean")


def comparison(left: Node, right: Node, fn: Callable[[Any, Any], Any]) -> Callable[[pd.DataFrame], Any]:
    def evaluate(frame: pd.DataFrame) -> Any:
        a, b = left.evaluate(frame), right.evaluate(frame)
        result = fn(a, b)
        if isinstance(result, pd.Series):
            return result.astype("boolean").fillna(False).astype(bool) if result.dtype != bool else result
        return result

    return evaluate


def membership(left: Node, values: list[Any], negate: bool) -> Callable[[pd.DataFrame], Any]:
    def evaluate(frame: pd.DataFrame) -> Any:
        operand = left.evaluate(frame)
        if isinstance(operand, pd.Series):
            inside = operand.isin(values).to_numpy(dtype=bool, na_value=False)
            if negate:
                inside = ~inside & operand.notna().to_numpy(dtype=bool)
            return inside
        if isinstance(operand, np.ndarray):
            inside = np.isin(operand, values)
            return ~inside & ~pd.isna(operand) if negate else inside
        return (operand not in values) if negate else (operand in values)

    return evaluate


def combined_mask(frame: pd.DataFrame, filters: Sequence[Filter]) -> np.ndarray:
    """Rows of ``frame`` that pass every filter."""
    mask = np.ones(len(frame), dtype=bool)
    for f in filters:
        mask &= f.mask(frame)
    return mask


def apply_filters(frame: pd.DataFrame, filters: Sequence[Filter]) -> pd.DataFrame:
    """The rows of ``frame`` that pass every filter."""
    if not filters:
        return frame
    return frame[combined_mask(frame, filters)]


@dataclass(frozen=True)
class RowFilter:
    """A picklable per-partition filter (for LSDB's ``map_partitions``, main and margin);
    ``columns``, when given, are the columns kept after filtering."""

    filters: tuple[Filter, ...]
    columns: tuple[str, ...] | None = None

    def __call__(self, frame: pd.DataFrame) -> pd.DataFrame:
        kept = apply_filters(frame, self.filters)
        return kept if self.columns is None else kept[list(self.columns)]
