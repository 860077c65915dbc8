"""The fast path: checked AST -> Python source -> one compiled function per expression.

The generated source uses only: the fixed parameter names (lead, now, score, activity, stage), the
names in `RUNTIME_GLOBALS`, literals and operators. It never contains attribute access, so no dunder can
be reached from it; `_verify_generated` re-checks that invariant on every compile (defence in depth).
Comparisons, boolean logic and declared field reads (``lead["company"]["industry"]``) stay native —
`MISSING`'s dunders give them the language's semantics. Arithmetic is native only where the checker proved
both operands numbers; otherwise (any operand of unknown type) it calls the guarded helper, so the fast path
never does what the reference (the same helpers) refuses. ``**``, ``*``, ``not in`` and non-literal ``in``
always go through the bounded helpers in `engine.expr.sandbox`; ``any``/``all`` call its quantifier loops with
a one-parameter function of the condition.
"""

from __future__ import annotations

import ast
import warnings
from typing import Any, Callable

from engine.expr import functions, sandbox
from engine.expr.functions import HELPERS, Helper
from engine.expr.sandbox import ALLOWED_SCOPE_NAMES, MISSING
from engine.expr.types import NumberType, StringType

PARAMETERS = ("lead", "now", "score", "activity", "stage")

RUNTIME_GLOBALS: dict[str, object] = {
    "_MISSING": MISSING,
    "_in": sandbox.safe_in,
    "_not_in": sandbox.safe_not_in,
    "_add": sandbox.safe_add,
    "_mul": sandbox.safe_mul,
    "_sub": sandbox.safe_sub,
    "_div": sandbox.safe_div,
    "_floordiv": sandbox.safe_floordiv,
    "_mod": sandbox.safe_mod,
    "_pow": sandbox.safe_pow,
    "_field": sandbox.field,
    "_index": sandbox.index,
    "_set": sandbox.make_set,
    "_q_any": sandbox.quantifier_any,
    "_q_all": sandbox.quantifier_all,
    "_EVAL_ERRORS": sandbox.EVAL_CAUGHT_EXCEPTIONS,
    "_evaluation_error": sandbox.evaluation_error,
    **{h.global_name: h.fn for h in HELPERS.values()},
}

_COMPARE = {
    ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=",
}  # fmt: skip
_FROZENSET_MIN_ITEMS = 8  # from this size a literal `in` list is emitted as a (constant-folded) set


def _literal(value: Any) -> str:
    if type(value) in (bool, int, str):
        return repr(value)
    if type(value) is float:
        text = repr(value)
        if text in ("inf", "-inf", "nan"):  # sandbox rejects these literals; fail closed anyway
            raise ValueError("non-finite literal")
        return text
    raise ValueError(f"cannot emit literal of type {type(value).__name__}")


def _is_const_sequence(node: ast.AST) -> bool:
    return isinstance(node, (ast.List, ast.Tuple, ast.Set)) and all(isinstance(e, ast.Constant) for e in node.elts)


def _is_pure_path(node: ast.AST) -> bool:
    """A side-effect-free, cheap read (evaluating it twice is fine)."""
    while True:
        if isinstance(node, ast.Name):
            return True
        if isinstance(node, (ast.Attribute, ast.Subscript)) and getattr(node, "lo_access", None) == "item":
            node = node.value
            continue
        return False


def _tuple(parts: list[str]) -> str:
    if not parts:
        return "()"
    return "(" + ", ".join(parts) + ",)"


class Emitter:
    def emit(self, node: ast.AST) -> str:
        method = getattr(self, "emit_" + type(node).__name__)
        return method(node)

    def emit_Constant(self, node: ast.Constant) -> str:
        return _literal(node.value)

    def emit_Name(self, node: ast.Name) -> str:
        var = getattr(node, "lo_var", None)
        if var is not None:  # a quantifier's item: the loop function's parameter
            return var
        if node.id not in ALLOWED_SCOPE_NAMES:
            raise ValueError(f"name {node.id!r} cannot be emitted")
        return node.id

    def _access(self, node: ast.AST, base: ast.AST, key: int | str) -> str:
        access = getattr(node, "lo_access")
        value = self.emit(base)
        if access == "item":
            return f"{value}[{_literal(key)}]"
        if access == "field":
            return f"_field({value}, {_literal(key)})"
        if access == "index":
            return f"_index({value}, {_literal(key)})"
        raise ValueError(f"unknown access {access!r}")

    def emit_Attribute(self, node: ast.Attribute) -> str:
        return self._access(node, node.value, node.attr)

    def emit_Subscript(self, node: ast.Subscript) -> str:
        key = sandbox.subscript_key(node)
        assert key is not None
        return self._access(node, node.value, key)

    def emit_BoolOp(self, node: ast.BoolOp) -> str:
        joiner = " and " if isinstance(node.op, ast.And) else " or "
        return "(" + joiner.join(self.emit(v) for v in node.values) + ")"

    def emit_UnaryOp(self, node: ast.UnaryOp) -> str:
        operand = self.emit(node.operand)
        if isinstance(node.op, ast.Not):
            return f"(not {operand})"
        if isinstance(node.op, ast.USub):
            return f"(-{operand})"
        return f"(+{operand})"

    # operator -> (native symbol used when the checker proved both operands numbers, guarded helper)
    _ARITHMETIC: dict[type, tuple[str, str]] = {
        ast.Add: ("+", "_add"), ast.Sub: ("-", "_sub"), ast.Div: ("/", "_div"),
        ast.FloorDiv: ("//", "_floordiv"), ast.Mod: ("%", "_mod"), ast.Mult: ("", "_mul"), ast.Pow: ("", "_pow"),
    }  # fmt: skip

    def emit_BinOp(self, node: ast.BinOp) -> str:
        """Native arithmetic only on proven numbers; anything else (unknown types) via the guarded helper.

        `*` and `**` always use their helpers (integer size bounds).
        """
        left, right = self.emit(node.left), self.emit(node.right)
        if type(node.op) not in self._ARITHMETIC:
            raise ValueError(f"operator {type(node.op).__name__} cannot be emitted")
        symbol, helper = self._ARITHMETIC[type(node.op)]
        numbers = isinstance(getattr(node.left, "lo_type", None), NumberType) and isinstance(
            getattr(node.right, "lo_type", None), NumberType
        )
        if numbers and symbol:
            return f"({left} {symbol} {right})"
        return f"{helper}({left}, {right})"

    def emit_IfExp(self, node: ast.IfExp) -> str:
        return f"({self.emit(node.body)} if {self.emit(node.test)} else {self.emit(node.orelse)})"

    def _const_container(self, node: ast.List | ast.Tuple | ast.Set, left: ast.AST) -> str:
        values = [e.value for e in node.elts]  # type: ignore[attr-defined]
        left_type = getattr(left, "lo_type", None)
        if (
            len(values) >= _FROZENSET_MIN_ITEMS
            and isinstance(left_type, (StringType, NumberType))
            and all(type(v) in (str, int) for v in values)
        ):
            return "{" + ", ".join(_literal(v) for v in values) + "}"  # folded into a frozenset constant
        return _tuple([_literal(v) for v in values])

    def emit_Compare(self, node: ast.Compare) -> str:
        if len(node.ops) == 1 and isinstance(node.ops[0], (ast.In, ast.NotIn)):
            left_node, right_node = node.left, node.comparators[0]
            left = self.emit(left_node)
            if _is_const_sequence(right_node):
                container = self._const_container(right_node, left_node)  # type: ignore[arg-type]
                if isinstance(node.ops[0], ast.In):
                    return f"({left} in {container})"
                if _is_pure_path(left_node):
                    return f"({left} not in {container} and {left} is not _MISSING)"
                return f"_not_in({left}, {container})"
            right = self.emit(right_node)
            helper = "_in" if isinstance(node.ops[0], ast.In) else "_not_in"
            return f"{helper}({left}, {right})"
        parts = [self.emit(node.left)]
        for op, comparator in zip(node.ops, node.comparators):
            if type(op) not in _COMPARE:
                raise ValueError("'in' cannot be chained")
            parts.append(_COMPARE[type(op)])
            parts.append(self.emit(comparator))
        return "(" + " ".join(parts) + ")"

    def emit_List(self, node: ast.List) -> str:
        return _tuple([self.emit(e) for e in node.elts])

    emit_Tuple = emit_List

    def emit_Set(self, node: ast.Set) -> str:
        return f"_set({_tuple([self.emit(e) for e in node.elts])})"

    def emit_Call(self, node: ast.Call) -> str:
        quantifier = getattr(node, "lo_quantifier", None)
        if quantifier is not None:  # any/all(list, x, condition): a plain loop over a one-parameter function
            items, var, predicate = node.args
            return f"_q_{quantifier}({self.emit(items)}, lambda {var.lo_var}: {self.emit(predicate)})"  # type: ignore[attr-defined]
        helper: Helper = node.lo_helper  # type: ignore[attr-defined]
        args: list[ast.AST | None] = node.lo_args  # type: ignore[attr-defined]
        if helper.name in ("present", "missing"):
            arg = args[0]
            if isinstance(arg, ast.Constant):  # a literal is never missing
                return "True" if helper.name == "present" else "False"
            if not isinstance(arg, (ast.List, ast.Tuple, ast.Set)):  # `is` on a literal would warn
                test = "is not" if helper.name == "present" else "is"
                return f"({self.emit(arg)} {test} _MISSING)"
        emitted = list(helper.implicit)
        first_default = len(helper.params) - len(helper.defaults)
        for position, arg in enumerate(args):
            if arg is None:
                emitted.append(repr(helper.defaults[position - first_default]))
            else:
                emitted.append(self.emit(arg))
        return f"{helper.global_name}({', '.join(emitted)})"


def always_bool(node: ast.AST) -> bool:
    """Does this expression always evaluate to a real bool (never MISSING or another value)?"""
    if isinstance(node, ast.Compare) or (isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not)):
        return True
    if isinstance(node, ast.Constant):
        return type(node.value) is bool
    if isinstance(node, ast.Call):
        return getattr(getattr(node, "lo_helper", None), "name", None) in ("present", "missing")
    if isinstance(node, ast.BoolOp):
        return all(always_bool(v) for v in node.values)
    if isinstance(node, ast.IfExp):
        return always_bool(node.body) and always_bool(node.orelse)
    return False


def emit(tree: ast.Expression, as_bool: bool = False) -> str:
    """Python source of a checked expression tree; `as_bool` makes the result a real bool (truthiness)."""
    py = Emitter().emit(tree.body)
    if as_bool and not always_bool(tree.body):
        py = f"(True if {py} else False)"
    return py


QUANTIFIER_VARIABLES = tuple(f"_v{i}" for i in range(sandbox.MAX_QUANTIFIER_NESTING))


def _is_quantifier_lambda(node: ast.Lambda) -> bool:
    """`lambda _vN: <expression>`: one plain parameter, no defaults, nothing else."""
    a = node.args
    return (len(a.args) == 1 and a.args[0].arg in QUANTIFIER_VARIABLES and not a.posonlyargs and not a.kwonlyargs
            and a.vararg is None and a.kwarg is None and not a.defaults and not a.kw_defaults)


def _verify_generated(py: str) -> None:
    """Defence in depth: the generated source may only use parameters, runtime globals, literals, operators."""
    tree = ast.parse(py, mode="eval")
    allowed_names = set(PARAMETERS) | set(RUNTIME_GLOBALS) | set(QUANTIFIER_VARIABLES)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            raise AssertionError("generated code must not contain attribute access")
        if isinstance(node, ast.Name) and node.id not in allowed_names:
            raise AssertionError(f"generated code uses unexpected name {node.id!r}")
        if isinstance(node, ast.Lambda) and not _is_quantifier_lambda(node):
            raise AssertionError("generated code may only contain one-parameter quantifier functions")
        if isinstance(node, (ast.NamedExpr, ast.comprehension, ast.JoinedStr, ast.Starred)):
            raise AssertionError(f"generated code contains {type(node).__name__}")
        if isinstance(node, ast.Call) and not (isinstance(node.func, ast.Name) and node.func.id.startswith("_")):
            raise AssertionError("generated code may only call runtime helpers")


_FUNCTION_TEMPLATE = """\
def _lo_expr(lead, now, score=None, activity=None, stage=None):
    try:
        return {py}
    except _EVAL_ERRORS as _exc:
        raise _evaluation_error(_exc, _SOURCE) from None
"""


def build_function(py: str, source: str) -> Callable[..., Any]:
    """Compile the generated expression once into a function with the fixed parameters."""
    _verify_generated(py)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SyntaxWarning)
        compile(py, "<leadops-expression>", "eval", dont_inherit=True)  # the fragment alone is an expression
        code = compile(_FUNCTION_TEMPLATE.format(py=py), "<leadops-expression>", "exec", dont_inherit=True)
    namespace: dict[str, Any] = {"__builtins__": {}, **RUNTIME_GLOBALS, "_SOURCE": source}
    exec(code, namespace)  # noqa: S102 - generated from a whitelisted, verified AST; empty builtins
    return namespace["_lo_expr"]


__all__ = ["RUNTIME_GLOBALS", "PARAMETERS", "emit", "build_function", "functions"]
