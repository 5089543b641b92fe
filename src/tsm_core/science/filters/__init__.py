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

The package holds :mod:`~tsm_core.science.filters.parsing` (:func:`parse_filter`, the
bounds, checks against columns and types), :mod:`~tsm_core.science.filters.grammar` (the
allow-listed syntax, compiled) and :mod:`~tsm_core.science.filters.evaluate` (vectorized
evaluation, masks, :class:`RowFilter`); the public names are re-exported here.
"""

from tsm_core.science.filters.evaluate import RowFilter, apply_filters, combined_mask
from tsm_core.science.filters.grammar import BOOLEAN_FUNCTIONS, FUNCTIONS, MAX_INT
from tsm_core.science.filters.parsing import (
    MAX_DEPTH,
    MAX_LENGTH,
    MAX_NODES,
    Filter,
    check_filter_columns,
    check_filter_types,
    parse_filter,
    parse_filters,
)

__all__ = [
    "BOOLEAN_FUNCTIONS",
    "FUNCTIONS",
    "MAX_DEPTH",
    "MAX_INT",
    "MAX_LENGTH",
    "MAX_NODES",
    "Filter",
    "RowFilter",
    "apply_filters",
    "check_filter_columns",
    "check_filter_types",
    "combined_mask",
    "parse_filter",
    "parse_filters",
]
