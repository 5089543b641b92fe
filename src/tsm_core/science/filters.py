"""The filter language of ``filters.redshift`` and ``filters.object``.

A filter is a boolean expression over the columns of its input, written in a small
subset of Python and parsed with :mod:`ast` into an allow-listed tree. It is evaluated
with vectorized numpy / pandas operations on the columns; it never goes through
``eval``, ``DataFrame.query`` or any other interpreter that can reach Python objects,
so a filter typed into the web form or a YAML file is data, never code.

Grammar::

    expression  := column | literal | expression OP expression | UNARY expression
                 | expression CMP expression [CMP expression ...]   (chained comparisons)
                 | expression [not] in [literal, ...]
                 | FUNCTION(expression)
    column      := an identifier (i_cModelFlux) or `any text in backquotes`
    literal     := int | float | "str" | 'str' | True | False
    OP          := and  or  &  |  +  -  *  /  **
    UNARY       := not  ~  -
    CMP         := ==  !=  <  <=  >  >=
    FUNCTION    := abs  log10  sqrt  isnan  isfinite  isnull  notnull

Examples::

    i_cModelFlux / i_cModelFluxErr >= 5          # S/N cut
    refExtendedness == 1                          # extended sources
    SPECTYPE == "GALAXY"
    z_flag in [3, 4]
    isfinite(z_err) and z_err < 0.01
    `flag with spaces` == False

Attributes, subscripts, ``@`` references, lambdas, comprehensions, other calls and
names starting with ``__`` are refused with a :class:`~tsm_core.errors.ConfigError`
naming the config key, the expression and the construct, before any data is read.
A missing value (NaN, null) never passes a comparison.

Bounded work: checking a filter takes milliseconds whatever is typed. An expression is
at most :data:`MAX_LENGTH` characters, :data:`MAX_DEPTH` levels deep and
:data:`MAX_NODES` sub-expressions; integer literals fit 64 bits; arithmetic is done in
float64 only (a column's values, or a constant sub-expression folded once at check
time, which must stay finite), never with Python's unbounded integers.
"""

from __future__ import annotations

import ast
import difflib
import operator
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from tsm_core.errors import ConfigError

#: functions a filter may call, each of one argument
FUNCTIONS: dict[str, Callable[[Any], Any]] = {
    "abs": np.abs,
    "log10": np.log10,
    "sqrt": np.sqrt,
    "isnan": lambda v: np.isnan(_as_float(v)),
    "isfinite": lambda v: np.isfinite(_as_float(v)),
    "isnull": pd.isna,
    "notnull": pd.notna,
}
#: functions whose result is boolean (the others give numbers)
BOOLEAN_FUNCTIONS = frozenset({"isnan", "isfinite", "isnull", "notnull"})

_COMPARE: dict[type[ast.cmpop], tuple[str, Callable[[Any, Any], Any]]] = {
    ast.Eq: ("==", operator.eq),
    ast.NotEq: ("!=", operator.ne),
    ast.Lt: ("<", operator.lt),
    ast.LtE: ("<=", operator.le),
    ast.Gt: (">", operator.gt),
    ast.GtE: (">=", operator.ge),
}
_FLIPPED = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_ARITHMETIC: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
}
_LOGICAL: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.BitAnd: operator.and_,
    ast.BitOr: operator.or_,
}
#: what a refused node is called in the error message
_NAMES: dict[type[ast.AST], str] = {
    ast.Attribute: "attribute access",
    ast.Subscript: "subscripts",
    ast.Lambda: "lambda",
    ast.ListComp: "comprehensions",
    ast.SetComp: "comprehensions",
    ast.DictComp: "comprehensions",
    ast.GeneratorExp: "comprehensions",
    ast.Call: "function calls",
    ast.IfExp: "conditional expressions",
    ast.NamedExpr: "assignment expressions",
    ast.Starred: "starred expressions",
    ast.Dict: "dicts",
    ast.Set: "sets",
    ast.JoinedStr: "f-strings",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
}

_BACKQUOTED = re.compile(r"`([^`]*)`")
_PLACEHOLDER = "_tsm_column_{}_"
#: the longest filter expression, in characters
MAX_LENGTH = 2000
#: the deepest nesting of a filter's syntax tree (parentheses, operators, calls)
MAX_DEPTH = 64
#: the most sub-expressions (columns, literals, operations) a filter may have
MAX_NODES = 1000
#: the largest magnitude of an integer literal (the int64 range)
MAX_INT = 2**63 - 1


def _as_float(values: Any) -> Any:
    if isinstance(values, pd.Series):
        return values.to_numpy(dtype=np.float64, na_value=np.nan)
    return np.asarray(values, dtype=np.float64)


class _Refused(Exception):
    """A construct outside the grammar (turned into a ConfigError by :func:`parse_filter`)."""


class _Unbounded(Exception):
    """A literal or constant beyond the filter language's bounds (its message is shown as is)."""


# A compiled node: frame -> values. ``kind`` says what it gives: "bool", "number",
# "literal" or "column" (a column's type is known only from the data).
@dataclass(frozen=True)
class _Node:
    evaluate: Callable[[pd.DataFrame], Any]
    kind: str
    #: (column, op, literal) when the node is a pushable ``column op literal`` cut
    pushdown: tuple[str, str, Any] | None = None
    literal: Any = None


def _literal(value: Any) -> _Node:
    return _Node(lambda frame: value, "literal", literal=value)


class _Compiler:
    """Walks the allow-listed tree, collecting column names, building closures."""

    def __init__(self, columns: dict[str, str], source: str) -> None:
        self.placeholders = columns  # placeholder identifier -> backquoted column name
        self.columns: list[str] = []
        self.source = source

    def text(self, node: ast.AST) -> str:
        """What the user wrote for ``node`` (shortened), for error messages."""
        return _abbreviated(ast.get_source_segment(self.source, node) or type(node).__name__)

    def compile(self, node: ast.AST) -> _Node:
        method = getattr(self, f"_{type(node).__name__}", None)
        if method is None:
            raise _Refused(_NAMES.get(type(node), type(node).__name__))
        return method(node)

    def _Constant(self, node: ast.Constant) -> _Node:
        value = node.value
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT:
            raise _Unbounded(f"the integer literal {self.text(node)} is beyond the 64-bit range "
                             f"(at most {MAX_INT:,} in magnitude; write a float such as 1e30)")
        if isinstance(value, (bool, int, float, str)):
            return _literal(value)
        raise _Refused(f"the literal {node.value!r}")

    def _Name(self, node: ast.Name) -> _Node:
        name = self.placeholders.get(node.id, node.id)
        if node.id not in self.placeholders and node.id.startswith("__"):
            raise _Refused(f"the name {node.id!r}")
        if node.id in FUNCTIONS:
            raise _Refused(f"{node.id!r} without a call")
        if name not in self.columns:
            self.columns.append(name)
        return _Node(lambda frame: frame[name], "column", pushdown=(name, "", None))

    def _UnaryOp(self, node: ast.UnaryOp) -> _Node:
        inner = self.compile(node.operand)
        if isinstance(node.op, ast.USub):
            if _is_number(inner):
                return _literal(-inner.literal)
            self._numeric(inner, "-")
            return _Node(lambda frame: -inner.evaluate(frame), "number")
        if isinstance(node.op, ast.UAdd):
            self._numeric(inner, "+")
            return inner
        if isinstance(node.op, (ast.Not, ast.Invert)):
            self._boolean(inner, "not" if isinstance(node.op, ast.Not) else "~")
            return _Node(lambda frame: np.logical_not(_truth(inner.evaluate(frame))), "bool")
        raise _Refused(type(node.op).__name__)

    def _BoolOp(self, node: ast.BoolOp) -> _Node:
        parts = [self.compile(v) for v in node.values]
        word = "and" if isinstance(node.op, ast.And) else "or"
        for part in parts:
            self._boolean(part, word)
        combine = operator.and_ if isinstance(node.op, ast.And) else operator.or_

        def evaluate(frame: pd.DataFrame) -> Any:
            result = _truth(parts[0].evaluate(frame))
            for part in parts[1:]:
                result = combine(result, _truth(part.evaluate(frame)))
            return result

        return _Node(evaluate, "bool")

    def _BinOp(self, node: ast.BinOp) -> _Node:
        left, right = self.compile(node.left), self.compile(node.right)
        if type(node.op) in _LOGICAL:
            symbol = "&" if isinstance(node.op, ast.BitAnd) else "|"
            self._boolean(left, symbol)
            self._boolean(right, symbol)
            op = _LOGICAL[type(node.op)]
            return _Node(lambda frame: op(_truth(left.evaluate(frame)), _truth(right.evaluate(frame))), "bool")
        if type(node.op) in _ARITHMETIC:
            self._numeric(left, "arithmetic")
            self._numeric(right, "arithmetic")
            op = _ARITHMETIC[type(node.op)]
            if _is_number(left) and _is_number(right):
                return _literal(_fold(self.text(node), op, left.literal, right.literal))

            def evaluate(frame: pd.DataFrame) -> Any:
                with np.errstate(all="ignore"):
                    return op(_numeric_values(left.evaluate(frame)), _numeric_values(right.evaluate(frame)))

            return _Node(evaluate, "number")
        raise _Refused(f"the operator {type(node.op).__name__}")

    def _Compare(self, node: ast.Compare) -> _Node:
        operands = [self.compile(node.left)] + [self._comparand(op, c) for op, c in zip(node.ops, node.comparators)]
        tests: list[Callable[[pd.DataFrame], Any]] = []
        pushdown = None
        for left, op, right in zip(operands, node.ops, operands[1:]):
            if isinstance(op, (ast.In, ast.NotIn)):
                values = list(right.literal)
                negate = isinstance(op, ast.NotIn)
                tests.append(_membership(left, values, negate))
                if len(node.ops) == 1 and left.kind == "column" and left.pushdown:
                    pushdown = (left.pushdown[0], "not in" if negate else "in", values)
                continue
            if type(op) not in _COMPARE:
                raise _Refused(f"the comparison {type(op).__name__}")
            symbol, fn = _COMPARE[type(op)]
            tests.append(_comparison(left, right, fn))
            if len(node.ops) == 1:
                if left.kind == "column" and right.kind == "literal":
                    pushdown = (left.pushdown[0], symbol, right.literal)
                elif left.kind == "literal" and right.kind == "column":
                    pushdown = (right.pushdown[0], _FLIPPED[symbol], left.literal)

        def evaluate(frame: pd.DataFrame) -> Any:
            result = _truth(tests[0](frame))
            for test in tests[1:]:
                result = result & _truth(test(frame))
            return result

        return _Node(evaluate, "bool", pushdown=pushdown)

    def _comparand(self, op: ast.cmpop, node: ast.AST) -> _Node:
        if not isinstance(op, (ast.In, ast.NotIn)):
            return self.compile(node)
        if not isinstance(node, (ast.List, ast.Tuple)):
            raise _Refused("'in' with anything but a literal list such as [3, 4]")
        items = [self.compile(e) for e in node.elts]
        if any(i.kind != "literal" for i in items):
            raise _Refused("'in' with anything but a literal list such as [3, 4]")
        return _Node(lambda frame: None, "literal", literal=tuple(i.literal for i in items))

    def _Call(self, node: ast.Call) -> _Node:
        if not isinstance(node.func, ast.Name):
            self.compile(node.func)  # names what is refused in the callee (attribute access, ...)
            raise _Refused("calls of anything but a function name")
        if node.func.id not in FUNCTIONS:
            raise _Refused(f"the function {node.func.id!r} (allowed: {', '.join(FUNCTIONS)})")
        if node.keywords or len(node.args) != 1:
            raise _Refused(f"{node.func.id}() with other than one positional argument")
        inner = self.compile(node.args[0])
        fn = FUNCTIONS[node.func.id]
        boolean = node.func.id in BOOLEAN_FUNCTIONS
        if not boolean:
            self._numeric(inner, node.func.id)

        def evaluate(frame: pd.DataFrame) -> Any:
            with np.errstate(all="ignore"):
                value = inner.evaluate(frame)
                return fn(value if boolean else _numeric_values(value))

        return _Node(evaluate, "bool" if boolean else "number")

    @staticmethod
    def _boolean(node: _Node, where: str) -> None:
        if node.kind == "number" or (node.kind == "literal" and not isinstance(node.literal, bool)):
            raise _Refused(f"a non-boolean operand of {where!r}")

    @staticmethod
    def _numeric(node: _Node, where: str) -> None:
        if node.kind == "bool" or (node.kind == "literal" and isinstance(node.literal, (str, bool))):
            raise _Refused(f"a non-numeric operand of {where!r}")


def _is_number(node: _Node) -> bool:
    return node.kind == "literal" and isinstance(node.literal, (int, float)) and not isinstance(node.literal, bool)


def _abbreviated(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else f"{text[:limit - 3]}..."


def _fold(text: str, op: Callable[[Any, Any], Any], left: int | float, right: int | float) -> float:
    """A constant sub-expression computed once, in float64 (constant time for any operands:
    ``9**9**9**9`` overflows to inf at once instead of running Python's big integers)."""
    with np.errstate(all="ignore"):
        value = op(np.float64(left), np.float64(right))
    if not np.isfinite(value) and np.isfinite(left) and np.isfinite(right):
        raise _Unbounded(f"the constant {text} is not a finite 64-bit float")
    return float(value)


def _numeric_values(values: Any) -> Any:
    """Columns as float arrays for arithmetic (nullable types' NA become NaN); literals as float64."""
    if isinstance(values, pd.Series):
        if pd.api.types.is_bool_dtype(values.dtype) or not pd.api.types.is_numeric_dtype(values.dtype):
            raise TypeError(f"column {values.name!r} ({values.dtype}) is not numeric")
        return values.to_numpy(dtype=np.float64, na_value=np.nan)
    if isinstance(values, (int, float)) and not isinstance(values, bool):
        return np.float64(values)
    return values


def _truth(values: Any) -> Any:
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


def _comparison(left: _Node, right: _Node, fn: Callable[[Any, Any], Any]) -> Callable[[pd.DataFrame], Any]:
    def evaluate(frame: pd.DataFrame) -> Any:
        a, b = left.evaluate(frame), right.evaluate(frame)
        result = fn(a, b)
        if isinstance(result, pd.Series):
            return result.astype("boolean").fillna(False).astype(bool) if result.dtype != bool else result
        return result

    return evaluate


def _membership(left: _Node, values: list[Any], negate: bool) -> Callable[[pd.DataFrame], Any]:
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


@dataclass(frozen=True)
class Filter:
    """One parsed filter: what the user wrote, its config key and the columns it reads."""

    expression: str
    key: str
    columns: tuple[str, ...]
    _root: _Node = field(repr=False, compare=False)

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
            truth = _truth(self._root.evaluate(frame))
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
    compiler = _Compiler(placeholders, source)
    try:
        root = compiler.compile(tree.body)
    except _Refused as exc:
        raise ConfigError(key, f"{expression!r} uses {exc}, which filters do not allow") from None
    except _Unbounded as exc:
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
        stack.extend((child, level + 1) for child in ast.iter_child_nodes(node)
                     if not isinstance(child, ast.expr_context))
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
