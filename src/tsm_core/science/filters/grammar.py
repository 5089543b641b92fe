"""The allow-list of the filter language: which Python syntax a filter may use, compiled
into closures over columns (:class:`Compiler`); anything else is :class:`Refused`.

Constant sub-expressions are folded once, in float64; integer literals fit 64 bits
(:data:`MAX_INT`). See :mod:`tsm_core.science.filters` for the grammar.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from tsm_core.science.filters.evaluate import Node, as_float, comparison, membership, numeric_values, truth_of

#: functions a filter may call, each of one argument
FUNCTIONS: dict[str, Callable[[Any], Any]] = {
    "abs": np.abs,
    "log10": np.log10,
    "sqrt": np.sqrt,
    "isnan": lambda v: np.isnan(as_float(v)),
    "isfinite": lambda v: np.isfinite(as_float(v)),
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

#: the largest magnitude of an integer literal (the int64 range)
MAX_INT = 2**63 - 1


class Refused(Exception):
    """A construct outside the grammar (turned into a ConfigError by :func:`parse_filter`)."""


class Unbounded(Exception):
    """A literal or constant beyond the filter language's bounds (its message is shown as is)."""


def _literal(value: Any) -> Node:
    return Node(lambda frame: value, "literal", literal=value)


class Compiler:
    """Walks the allow-listed tree, collecting column names, building closures."""

    def __init__(self, columns: dict[str, str], source: str) -> None:
        self.placeholders = columns  # placeholder identifier -> backquoted column name
        self.columns: list[str] = []
        self.source = source

    def text(self, node: ast.AST) -> str:
        """What the user wrote for ``node`` (shortened), for error messages."""
        return _abbreviated(ast.get_source_segment(self.source, node) or type(node).__name__)

    def compile(self, node: ast.AST) -> Node:
        method = getattr(self, f"_{type(node).__name__}", None)
        if method is None:
            raise Refused(_NAMES.get(type(node), type(node).__name__))
        return method(node)

    def _Constant(self, node: ast.Constant) -> Node:
        value = node.value
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT:
            raise Unbounded(
                f"the integer literal {self.text(node)} is beyond the 64-bit range "
                f"(at most {MAX_INT:,} in magnitude; write a float such as 1e30)"
            )
        if isinstance(value, (bool, int, float, str)):
            return _literal(value)
        raise Refused(f"the literal {node.value!r}")

    def _Name(self, node: ast.Name) -> Node:
        name = self.placeholders.get(node.id, node.id)
        if node.id not in self.placeholders and node.id.startswith("__"):
            raise Refused(f"the name {node.id!r}")
        if node.id in FUNCTIONS:
            raise Refused(f"{node.id!r} without a call")
        if name not in self.columns:
            self.columns.append(name)
        return Node(lambda frame: frame[name], "column", pushdown=(name, "", None))

    def _UnaryOp(self, node: ast.UnaryOp) -> Node:
        inner = self.compile(node.operand)
        if isinstance(node.op, ast.USub):
            if _is_number(inner):
                return _literal(-inner.literal)
            self._numeric(inner, "-")
            return Node(lambda frame: -inner.evaluate(frame), "number")
        if isinstance(node.op, ast.UAdd):
            self._numeric(inner, "+")
            return inner
        if isinstance(node.op, (ast.Not, ast.Invert)):
            self._boolean(inner, "not" if isinstance(node.op, ast.Not) else "~")
            return Node(lambda frame: np.logical_not(truth_of(inner.evaluate(frame))), "bool")
        raise Refused(type(node.op).__name__)

    def _BoolOp(self, node: ast.BoolOp) -> Node:
        parts = [self.compile(v) for v in node.values]
        word = "and" if isinstance(node.op, ast.And) else "or"
        for part in parts:
            self._boolean(part, word)
        combine = operator.and_ if isinstance(node.op, ast.And) else operator.or_

        def evaluate(frame: pd.DataFrame) -> Any:
            result = truth_of(parts[0].evaluate(frame))
            for part in parts[1:]:
                result = combine(result, truth_of(part.evaluate(frame)))
            return result

        return Node(evaluate, "bool")

    def _BinOp(self, node: ast.BinOp) -> Node:
        left, right = self.compile(node.left), self.compile(node.right)
        if type(node.op) in _LOGICAL:
            symbol = "&" if isinstance(node.op, ast.BitAnd) else "|"
            self._boolean(left, symbol)
            self._boolean(right, symbol)
            op = _LOGICAL[type(node.op)]
            return Node(lambda frame: op(truth_of(left.evaluate(frame)), truth_of(right.evaluate(frame))), "bool")
        if type(node.op) in _ARITHMETIC:
            self._numeric(left, "arithmetic")
            self._numeric(right, "arithmetic")
            op = _ARITHMETIC[type(node.op)]
            if _is_number(left) and _is_number(right):
                return _literal(_fold(self.text(node), op, left.literal, right.literal))

            def evaluate(frame: pd.DataFrame) -> Any:
                with np.errstate(all="ignore"):
                    return op(numeric_values(left.evaluate(frame)), numeric_values(right.evaluate(frame)))

            return Node(evaluate, "number")
        raise Refused(f"the operator {type(node.op).__name__}")

    def _Compare(self, node: ast.Compare) -> Node:
        operands = [self.compile(node.left)] + [self._comparand(op, c) for op, c in zip(node.ops, node.comparators)]
        tests: list[Callable[[pd.DataFrame], Any]] = []
        pushdown = None
        for left, op, right in zip(operands, node.ops, operands[1:]):
            if isinstance(op, (ast.In, ast.NotIn)):
                values = list(right.literal)
                negate = isinstance(op, ast.NotIn)
                tests.append(membership(left, values, negate))
                if len(node.ops) == 1 and left.kind == "column" and left.pushdown:
                    pushdown = (left.pushdown[0], "not in" if negate else "in", values)
                continue
            if type(op) not in _COMPARE:
                raise Refused(f"the comparison {type(op).__name__}")
            symbol, fn = _COMPARE[type(op)]
            tests.append(comparison(left, right, fn))
            # an order against True/False is not pushed into the Parquet read: pyarrow has no
            # kernel comparing a bool with a number column, where the evaluation on the frame has
            ordered_bool = symbol not in ("==", "!=") and (
                isinstance(left.literal, bool) or isinstance(right.literal, bool)
            )
            if len(node.ops) == 1 and not ordered_bool:
                if left.kind == "column" and right.kind == "literal" and left.pushdown is not None:
                    pushdown = (left.pushdown[0], symbol, right.literal)
                elif left.kind == "literal" and right.kind == "column" and right.pushdown is not None:
                    pushdown = (right.pushdown[0], _FLIPPED[symbol], left.literal)

        def evaluate(frame: pd.DataFrame) -> Any:
            result = truth_of(tests[0](frame))
            for test in tests[1:]:
                result = result & truth_of(test(frame))
            return result

        return Node(evaluate, "bool", pushdown=pushdown)

    def _comparand(self, op: ast.cmpop, node: ast.AST) -> Node:
        if not isinstance(op, (ast.In, ast.NotIn)):
            return self.compile(node)
        if not isinstance(node, (ast.List, ast.Tuple)):
            raise Refused("'in' with anything but a literal list such as [3, 4]")
        items = [self.compile(e) for e in node.elts]
        if any(i.kind != "literal" for i in items):
            raise Refused("'in' with anything but a literal list such as [3, 4]")
        return Node(lambda frame: None, "literal", literal=tuple(i.literal for i in items))

    def _Call(self, node: ast.Call) -> Node:
        if not isinstance(node.func, ast.Name):
            self.compile(node.func)  # names what is refused in the callee (attribute access, ...)
            raise Refused("calls of anything but a function name")
        if node.func.id not in FUNCTIONS:
            raise Refused(f"the function {node.func.id!r} (allowed: {', '.join(FUNCTIONS)})")
        if node.keywords or len(node.args) != 1:
            raise Refused(f"{node.func.id}() with other than one positional argument")
        inner = self.compile(node.args[0])
        fn = FUNCTIONS[node.func.id]
        boolean = node.func.id in BOOLEAN_FUNCTIONS
        if not boolean:
            self._numeric(inner, node.func.id)

        def evaluate(frame: pd.DataFrame) -> Any:
            with np.errstate(all="ignore"):
                value = inner.evaluate(frame)
                return fn(value if boolean else numeric_values(value))

        return Node(evaluate, "bool" if boolean else "number")

    @staticmethod
    def _boolean(node: Node, where: str) -> None:
        if node.kind == "number" or (node.kind == "literal" and not isinstance(node.literal, bool)):
            raise Refused(f"a non-boolean operand of {where!r}")

    @staticmethod
    def _numeric(node: Node, where: str) -> None:
        if node.kind == "bool" or (node.kind == "literal" and isinstance(node.literal, (str, bool))):
            raise Refused(f"a non-numeric operand of {where!r}")


def _is_number(node: Node) -> bool:
    return node.kind == "literal" and isinstance(node.literal, (int, float)) and not isinstance(node.literal, bool)


def _abbreviated(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def _fold(text: str, op: Callable[[Any, Any], Any], left: int | float, right: int | float) -> float:
    """A constant sub-expression computed once, in float64 (constant time for any operands:
    ``9**9**9**9`` overflows to inf at once instead of running Python's big integers)."""
    with np.errstate(all="ignore"):
        value = op(np.float64(left), np.float64(right))
    if not np.isfinite(value) and np.isfinite(left) and np.isfinite(right):
        raise Unbounded(f"the constant {text} is not a finite 64-bit float")
    return float(value)
