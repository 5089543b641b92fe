"""Parsing a filter expression into a :class:`Filter`, with bounded work
(:data:`MAX_LENGTH`, :data:`MAX_DEPTH`, :data:`MAX_NODES`), and checking parsed filters
against the columns and types of their input before any data is read."""

from __future__ import annotations

import ast
import difflib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from tsm_core.errors import ConfigError
from tsm_core.science.filters.evaluate import Node, truth_of
from tsm_core.science.filters.grammar import Compiler, Refused, Unbounded

_BACKQUOTED = re.compile(r"`([^`]*)`")
_PLACEHOLDER = "_tsm_column_{}_"
#: the longest filter expression, in characters
MAX_LENGTH = 2000
#: the deepest nesting of a filter's syntax tree (parentheses, operators, calls)
MAX_DEPTH = 64
#: the most sub-expressions (columns, literals, operations) a filter may have
MAX_NODES = 1000


@dataclass(frozen=True)
class Filter:
    """One parsed filter: what the user wrote, its config key and the columns it reads."""

    expression: str
    key: str
    columns: tuple[str, ...]
    _root: Node = field(repr=False, compare=False)

    def __reduce__(self) -> tuple[Any, ...]:
        # the compiled closures are rebuilt from the text (for Dask worker processes)
        return parse_filter, (self.expression, self.key)

    def pushdown(self) -> tuple[str, str, Any] | None:
        """``(column, op, literal)`` for a Parquet read, when the filter is that simple."""
        root = self._root  # a bare column is evaluated, not pushed: its type is known only from the data
        if root.kind == "bool" and root.pushdown:
            column, op, value = root.pushdown
            if op in ("in", "not in") or isinstance(value, (bool, int, float, str)):
                return column, op, value
        return None

    def mask(self, frame: pd.DataFrame) -> np.ndarray:
        """Boolean mask of the rows of ``frame`` that pass (missing values never pass)."""
        try:
            truth = truth_of(self._root.evaluate(frame))
        except (TypeError, ValueError, ArithmeticError, NotImplementedError) as exc:
            raise ConfigError(self.key, f"cannot evaluate {self.expression!r}: {exc}") from None
        if np.ndim(truth) == 0:
            return np.full(len(frame), bool(truth))
        return np.asarray(truth, dtype=bool)

    def check_columns(self, present: Iterable[str], what: str) -> None:
        """Fail naming the columns this filter reads that ``present`` lacks."""
        present = list(present)
        missing = [c for c in self.columns if c not in present]
        if missing:
            close = difflib.get_close_matches(missing[0], present, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ConfigError(
                self.key,
                f"{self.expression!r} names unknown {what} column(s) {', '.join(map(repr, missing))}{hint}; "
                f"columns present: {_listing(present)}",
            )


def _listing(names: Sequence[str], limit: int = 40) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" ... ({len(names) - limit} more)" if len(names) > limit else "")


def parse_filter(expression: str, key: str) -> Filter:
    """Parse ``expression`` into a :class:`Filter`; refuse anything outside the grammar.

    Raises :class:`~tsm_core.errors.ConfigError` naming ``key``, the expression and the
    construct refused (or the syntax error), without reading any data.
    """
    if not isinstance(expression, str) or not expression.strip():
        raise ConfigError(key, "a filter must be a non-empty expression such as 'refExtendedness == 1'")
    if len(expression) > MAX_LENGTH:
        raise ConfigError(key, f"a filter is at most {MAX_LENGTH} characters long, not {len(expression)}")
    placeholders: dict[str, str] = {}

    def quote(match: re.Match[str]) -> str:
        name = _PLACEHOLDER.format(len(placeholders))
        placeholders[name] = match.group(1)
        return name

    source = _BACKQUOTED.sub(quote, expression.strip())
    if "`" in source:
        raise ConfigError(key, f"{expression!r}: unbalanced backquote")
    too_deep = ConfigError(key, f"the expression is nested too deeply (max {MAX_DEPTH})")
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        if "@" in source:
            raise ConfigError(key, f"{expression!r} uses '@' references, which filters do not allow") from None
        if "too many nested" in str(exc.msg):
            raise too_deep from None
        raise ConfigError(key, f"{expression!r} is not a valid expression: {exc.msg}") from None
    except (RecursionError, MemoryError):  # the parser's own stack, on thousands of nested operators
        raise too_deep from None
    except ValueError as exc:  # null bytes, integer literals with too many digits
        raise ConfigError(key, f"{expression!r} is not a valid expression: {exc}") from None
    depth, nodes = _extent(tree.body)
    if depth > MAX_DEPTH:
        raise too_deep
    if nodes > MAX_NODES:
        raise ConfigError(key, f"the expression has too many parts ({nodes}; max {MAX_NODES})")
    compiler = Compiler(placeholders, source)
    try:
        root = compiler.compile(tree.body)
    except Refused as exc:
        raise ConfigError(key, f"{expression!r} uses {exc}, which filters do not allow") from None
    except Unbounded as exc:
        raise ConfigError(key, f"{expression!r}: {exc}") from None
    except RecursionError:
        raise too_deep from None
    if root.kind == "number" or (root.kind == "literal" and not isinstance(root.literal, bool)):
        raise ConfigError(key, f"{expression!r} is not a boolean condition (compare it, e.g. '... > 0')")
    return Filter(expression, key, tuple(compiler.columns), root)


def _extent(root: ast.AST) -> tuple[int, int]:
    """The depth of a syntax tree and its number of expressions, walked without recursion
    (contexts such as ``Load`` are left out)."""
    depth = nodes = 0
    stack = [(root, 1)]
    while stack:
        node, level = stack.pop()
        nodes += isinstance(node, ast.expr)
        depth = max(depth, level)
        stack.extend(
            (child, level + 1) for child in ast.iter_child_nodes(node) if not isinstance(child, ast.expr_context)
        )
    return depth, nodes


def parse_filters(expressions: Sequence[str], key: str) -> list[Filter]:
    """:func:`parse_filter` for each expression, keyed ``key[i]``."""
    return [parse_filter(e, f"{key}[{i}]") for i, e in enumerate(expressions)]


def check_filter_columns(filters: Sequence[Filter], present: Sequence[str], what: str) -> None:
    """Fail naming the first filter that reads a column ``present`` lacks."""
    for f in filters:
        f.check_columns(present, what)


def check_filter_types(filters: Sequence[Filter], schema: Any) -> None:
    """Evaluate ``filters`` on an empty frame of the Arrow ``schema``: a filter that compares
    a text column with a number, or is not boolean, fails now rather than mid-run."""
    needed = sorted({c for f in filters for c in f.columns if c in schema.names})
    probe = schema.empty_table().select(needed).to_pandas(types_mapper=pd.ArrowDtype)
    for f in filters:
        f.mask(probe)
