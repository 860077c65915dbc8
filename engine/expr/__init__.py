"""The leadops expression language: small, Python-like, sandboxed, type-checked expressions.

    from engine.expr import Scope, compile_expression, BOOL
    expr = compile_expression('lead.employees >= 50 and lead.country in ["AU", "NZ"]', scope, want=BOOL)
    expr.fn(lead_view, now)        # fast path (generated Python, compiled once)
    expr.reference(lead_view, now) # the same expression evaluated by simpleeval

Pipeline: `sandbox` text rules -> `parse` (ast.parse + whitelist) -> `check` (names, fields, types)
-> `compile` (generated source) / `reference` (simpleeval). Every limit lives in `sandbox.py`.

Missing values: absent fields and JSON null read as MISSING; every comparison with MISSING is False
(==, !=, <, <=, >, >=, in, not in — on either side), arithmetic with it gives MISSING, it is falsy, field
access on it gives MISSING, helpers given it return it (except present, missing, coalesce).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from engine.errors import EvaluationError, ExpressionError
from engine.expr import reference as _reference
from engine.expr.check import check
from engine.expr.compile import PARAMETERS, RUNTIME_GLOBALS, build_function, emit
from engine.expr.functions import HELPERS
from engine.expr.parse import parse
from engine.expr.sandbox import ALLOWED_SCOPE_NAMES, MISSING, encodable_text, evaluation_error
from engine.expr.types import (
    ANY,
    BOOL,
    DATETIME,
    INTEGER,
    NUMBER,
    STRING,
    AnyType,
    BoolType,
    DateTimeType,
    ListType,
    NumberType,
    ObjectType,
    StringType,
    Type,
    types_from_schema,
)


@dataclass(frozen=True)
class Scope:
    """The names an expression may use and their types, e.g. {"lead": lead_type, "now": DATETIME}."""

    names: Mapping[str, Type]

    def __post_init__(self) -> None:
        unknown = set(self.names) - ALLOWED_SCOPE_NAMES
        if unknown:
            raise ValueError(f"scope names must be among {sorted(ALLOWED_SCOPE_NAMES)}; got {sorted(unknown)}")


@dataclass(frozen=True)
class CompiledExpr:
    """A checked, compiled expression. `fn(lead, now, score=None, activity=None, stage=None)`.

    `fn` raises only EvaluationError. With `want=BOOL` it always returns True or False (a MISSING or
    other value counts by truthiness), so callers never see MISSING from a condition.
    """

    source: str
    py: str
    fn: Callable[..., Any] = field(repr=False, compare=False)
    result_type: Type
    paths: tuple[str, ...]
    tree: ast.Expression = field(repr=False, compare=False)
    as_bool: bool = False  # compiled with want=BOOL: fn returns a real bool (MISSING and other values by truthiness)

    def reference(self, lead: Any, now: Any, score: Any = None, activity: Any = None, stage: Any = None) -> Any:
        """The same expression evaluated by simpleeval (slow; for differential tests and debugging)."""
        value = _reference.evaluate(self.tree, self.source, lead, now, score, activity, stage)
        return (True if value else False) if self.as_bool else value


def compile_expression(source: str, scope: Scope, *, want: Type | None = None) -> CompiledExpr:
    """Parse, check and compile an untrusted expression; raises ExpressionError(code, message, column, hint)."""
    tree = parse(source)
    result = check(tree, source, scope.names, want)
    as_bool = isinstance(want, BoolType)
    py = emit(tree, as_bool=as_bool)
    fn = build_function(py, source)
    return CompiledExpr(source, py, fn, result.result_type, result.paths, tree, as_bool)


__all__ = [
    "Scope", "CompiledExpr", "compile_expression", "RUNTIME_GLOBALS", "PARAMETERS", "MISSING", "HELPERS",
    "ExpressionError", "EvaluationError", "evaluation_error", "encodable_text",
    "Type", "AnyType", "BoolType", "NumberType", "StringType", "DateTimeType", "ListType", "ObjectType",
    "ANY", "BOOL", "NUMBER", "INTEGER", "STRING", "DATETIME", "types_from_schema",
]  # fmt: skip
