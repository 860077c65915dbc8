"""The reference evaluator: the same checked AST evaluated by simpleeval, with the same helpers.

Slow and simple on purpose; it exists so a differential test can hold the fast path (`compile.py`) to
the same results. Field reads follow the checker's ``lo_access`` annotations, exactly like generated code.
"""

from __future__ import annotations

import ast
import functools
import operator as op
from typing import Any

import simpleeval

from engine.expr import sandbox
from engine.expr.functions import HELPERS
from engine.expr.sandbox import EVAL_CAUGHT_EXCEPTIONS, EVAL_TYPE, subscript_key

OPERATORS = {
    ast.Add: sandbox.safe_add,
    ast.Sub: sandbox.safe_sub,
    ast.Mult: sandbox.safe_mul,
    ast.Div: sandbox.safe_div,
    ast.FloorDiv: sandbox.safe_floordiv,
    ast.Mod: sandbox.safe_mod,
    ast.Pow: sandbox.safe_pow,
    ast.Eq: op.eq,
    ast.NotEq: op.ne,
    ast.Gt: op.gt,
    ast.Lt: op.lt,
    ast.GtE: op.ge,
    ast.LtE: op.le,
    ast.In: sandbox.safe_in,
    ast.NotIn: sandbox.safe_not_in,
    ast.Not: op.not_,
    ast.USub: op.neg,
    ast.UAdd: op.pos,
}


_UNBOUND = object()


class ReferenceEvaluator(simpleeval.EvalWithCompoundTypes):
    """simpleeval with leadops' field access, list/set literal values and no comprehensions."""

    def __init__(self, names: dict[str, Any], functions: dict[str, Any]):
        super().__init__(operators=dict(OPERATORS), functions=functions, names=names)
        for node_type in (ast.ListComp, ast.GeneratorExp, ast.DictComp, ast.Dict, ast.JoinedStr, ast.FormattedValue):
            self.nodes.pop(node_type, None)

    def _access(self, node: ast.AST, value: Any, key: int | str) -> Any:
        access = getattr(node, "lo_access", None)
        if access == "item":
            return value[key]
        if access == "field":
            return sandbox.field(value, key)  # type: ignore[arg-type]
        if access == "index":
            return sandbox.index(value, key)  # type: ignore[arg-type]
        raise simpleeval.FeatureNotAvailable("unchecked field access")

    def _eval_attribute(self, node: ast.Attribute) -> Any:
        return self._access(node, self._eval(node.value), node.attr)

    def _eval_subscript(self, node: ast.Subscript) -> Any:
        key = subscript_key(node)
        if key is None:
            raise simpleeval.FeatureNotAvailable("subscripts must be literals")
        return self._access(node, self._eval(node.value), key)

    def _eval_list(self, node: ast.List) -> tuple:
        return tuple(self._eval(e) for e in node.elts)

    def _eval_call(self, node: ast.Call) -> Any:
        quantifier = getattr(node, "lo_quantifier", None)
        if quantifier is None:
            return super()._eval_call(node)
        items, var, predicate = node.args
        loop = sandbox.quantifier_any if quantifier == "any" else sandbox.quantifier_all
        return loop(self._eval(items), lambda item: self._with_name(var.id, item, predicate))  # type: ignore[attr-defined]

    def _with_name(self, name: str, value: Any, node: ast.AST) -> Any:
        """Evaluate `node` with the quantifier's name bound to `value` (restored afterwards, for nesting)."""
        saved = self.names.get(name, _UNBOUND)
        self.names[name] = value
        try:
            return self._eval(node)
        finally:
            if saved is _UNBOUND:
                del self.names[name]
            else:
                self.names[name] = saved

    def _eval_set(self, node: ast.Set) -> frozenset:
        return sandbox.make_set(tuple(self._eval(e) for e in node.elts))


def evaluate(tree: ast.Expression, source: str, lead: Any, now: Any, score: Any = None, activity: Any = None,
             stage: Any = None) -> Any:
    """Evaluate a checked tree with simpleeval; raises only EvaluationError."""
    context = {"lead": lead, "now": now}
    functions = {}
    for helper in HELPERS.values():
        bound = [context[name] for name in helper.implicit]
        functions[helper.name] = functools.partial(helper.fn, *bound) if bound else helper.fn
    names = {"lead": lead, "now": now, "score": score, "activity": activity, "stage": stage}
    evaluator = ReferenceEvaluator(names, functions)
    try:
        return evaluator.eval(source, previously_parsed=tree.body)
    except EVAL_CAUGHT_EXCEPTIONS as exc:
        raise sandbox.evaluation_error(exc, source) from None
    except simpleeval.InvalidExpression as exc:
        from engine.errors import EvaluationError

        raise EvaluationError(EVAL_TYPE, f"{exc} in `{source}`") from None
