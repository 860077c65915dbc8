"""Static checks over a parsed expression: names, fields ("did you mean"), helper calls and types.

The checker annotates every node it accepts with ``lo_type`` (its static Type) and, for field reads,
``lo_access`` ("item": declared field, read as ``value["name"]``; "field": field of an untyped value,
read through ``sandbox.field``; "index": list/string index, read through ``sandbox.index``).
Both the compiler and the reference evaluator rely on these annotations, so they read data the same way.
"""

from __future__ import annotations

import ast
import difflib
from dataclasses import dataclass
from typing import Mapping

from engine.errors import ExpressionError
from engine.expr import sandbox
from engine.expr.functions import ACTIVITY_HELPERS, HELPERS, Helper, compile_pattern, validate_literal_argument
from engine.expr.sandbox import (
    EXPR_BAD_CALL,
    EXPR_FORBIDDEN,
    EXPR_TYPE,
    EXPR_UNKNOWN_FIELD,
    EXPR_UNKNOWN_NAME,
    STRING_METHOD_HELPERS,
    node_column,
    subscript_key,
)
from engine.expr.types import (
    ANY,
    BOOL,
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
    assignable,
    is_any,
    join,
)

CONTEXT_NAMES = {
    "lead": "the lead",
    "now": "the evaluation time",
    "score": "the lead's score (stage, routing and SLA rules)",
    "activity": "the activity being filtered (activity filters)",
    "stage": "the decided stage id (routing and SLA rules)",
}


@dataclass(frozen=True)
class CheckResult:
    tree: ast.Expression
    result_type: Type
    paths: tuple[str, ...]


def _suggest(name: str, candidates: object) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)  # type: ignore[call-overload]
    return f"did you mean {close[0]!r}?" if close else ""


def _is_string_literal(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and type(node.value) is str


class Checker:
    def __init__(self, source: str, names: Mapping[str, Type]):
        self.source = source
        self.names = names
        self.paths: dict[str, None] = {}

    # -- helpers -------------------------------------------------------------------------------------

    def col(self, node: ast.AST) -> int:
        return node_column(self.source, node) or 1

    def fail(self, code: str, message: str, node: ast.AST, hint: str = "") -> ExpressionError:
        return ExpressionError(code, message, self.col(node), hint)

    def text(self, node: ast.AST) -> str:
        return ast.get_source_segment(self.source, node) or ast.unparse(node)

    def visit(self, node: ast.AST, as_base: bool = False) -> Type:
        method = getattr(self, "visit_" + type(node).__name__, None)
        if method is None:  # the parser's whitelist makes this unreachable; keep it failing closed
            raise self.fail(EXPR_FORBIDDEN, f"{type(node).__name__} is not allowed", node)
        t = method(node) if not isinstance(node, (ast.Attribute, ast.Subscript, ast.Name)) else method(node, as_base)
        node.lo_type = t  # type: ignore[attr-defined]
        return t

    def record(self, node: ast.AST, as_base: bool) -> None:
        path = getattr(node, "lo_path", None)
        if path and not as_base:
            self.paths[path] = None

    # -- leaves ----------------------------------------------------------------------------------------

    def visit_Constant(self, node: ast.Constant) -> Type:
        value = node.value
        if type(value) is bool:
            return BOOL
        if type(value) is int:
            return INTEGER
        if type(value) is float:
            return NUMBER
        if type(value) is str:
            return STRING
        raise self.fail(EXPR_FORBIDDEN, f"{type(value).__name__} literals are not allowed", node)

    def visit_Name(self, node: ast.Name, as_base: bool = False) -> Type:
        name = node.id
        if name in self.names:
            node.lo_path = None if name == "now" else name  # type: ignore[attr-defined]
            self.record(node, as_base)
            return self.names[name]
        if name in HELPERS:
            raise self.fail(EXPR_BAD_CALL, f"helper {name!r} must be called", node, f"e.g. {HELPERS[name].signature}")
        if name in CONTEXT_NAMES:
            raise self.fail(
                EXPR_UNKNOWN_NAME, f"{name!r} ({CONTEXT_NAMES[name]}) is not available here", node,
                "available names: " + ", ".join(sorted(self.names)),
            )
        hint = _suggest(name, self.names)
        lowered = name.lower()
        if lowered in ("none", "null", "nil", "undefined"):
            hint = "use present(x) / missing(x)"
        elif lowered in ("true", "false"):
            hint = f"use {lowered.capitalize()}"
        elif not hint:
            hint = "available names: " + ", ".join(sorted(self.names))
        raise self.fail(EXPR_UNKNOWN_NAME, f"unknown name {name!r}", node, hint)

    # -- field access ------------------------------------------------------------------------------------

    def _object_field(self, node: ast.AST, base: ast.AST, base_type: ObjectType, name: str) -> Type:
        if name not in base_type.props:
            owner = getattr(base, "lo_path", None) or self.text(base)
            hint = _suggest(name, base_type.props)
            if not hint:
                shown = sorted(base_type.props)
                hint = "declared fields: " + ", ".join(shown[:30]) + (" ..." if len(shown) > 30 else "")
                if base_type.open and owner.startswith("lead"):
                    hint += "; declare new fields in the lead schema"
            raise self.fail(EXPR_UNKNOWN_FIELD, f"unknown field {name!r} of {owner}", node, hint)
        node.lo_access = "item"  # type: ignore[attr-defined]
        return base_type.props[name]

    def _child_path(self, node: ast.AST, base: ast.AST, suffix: str) -> None:
        base_path = getattr(base, "lo_path", None)
        node.lo_path = base_path + suffix if base_path else None  # type: ignore[attr-defined]

    def visit_Attribute(self, node: ast.Attribute, as_base: bool = False) -> Type:
        base_type = self.visit(node.value, as_base=True)
        self._child_path(node, node.value, "." + node.attr)
        if isinstance(base_type, ObjectType):
            t = self._object_field(node, node.value, base_type, node.attr)
        elif is_any(base_type):
            node.lo_access = "field"  # type: ignore[attr-defined]
            t = ANY
        else:
            hint = ""
            if node.attr in STRING_METHOD_HELPERS:
                hint = f"use the helper {STRING_METHOD_HELPERS[node.attr]}({self.text(node.value)}, ...)"
            raise self.fail(
                EXPR_TYPE, f"{self.text(node.value)} is a {base_type.describe()}; it has no field {node.attr!r}", node, hint
            )
        self.record(node, as_base)
        return t

    def visit_Subscript(self, node: ast.Subscript, as_base: bool = False) -> Type:
        base_type = self.visit(node.value, as_base=True)
        key = subscript_key(node)
        if isinstance(key, str):
            self._child_path(node, node.value, "." + key)
            if isinstance(base_type, ObjectType):
                t = self._object_field(node, node.value, base_type, key)
            elif is_any(base_type):
                node.lo_access = "field"  # type: ignore[attr-defined]
                t = ANY
            else:
                raise self.fail(EXPR_TYPE, f"cannot read field {key!r} of a value of type {base_type.describe()}", node)
        elif isinstance(key, int):
            self._child_path(node, node.value, f"[{key}]")
            if isinstance(base_type, ListType):
                t = base_type.item
            elif isinstance(base_type, StringType):
                t = STRING
            elif is_any(base_type):
                t = ANY
            else:
                raise self.fail(EXPR_TYPE, f"cannot index a value of type {base_type.describe()}", node)
            node.lo_access = "index"  # type: ignore[attr-defined]
        else:  # the parser already rejects this; fail closed
            raise self.fail(EXPR_FORBIDDEN, "subscripts must be an integer or string literal", node)
        self.record(node, as_base)
        return t

    # -- operators -------------------------------------------------------------------------------------------

    def visit_BoolOp(self, node: ast.BoolOp) -> Type:
        types = [self.visit(v) for v in node.values]
        if all(isinstance(t, BoolType) for t in types):
            return BOOL
        result = types[0]
        for t in types[1:]:
            result = join(result, t)
        return result

    def visit_UnaryOp(self, node: ast.UnaryOp) -> Type:
        t = self.visit(node.operand)
        if isinstance(node.op, ast.Not):
            return BOOL
        if isinstance(t, NumberType) or is_any(t):
            return t
        raise self.fail(EXPR_TYPE, f"unary {'-' if isinstance(node.op, ast.USub) else '+'} needs a number, got {t.describe()}", node)

    _ARITH_SYMBOL = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%", ast.Pow: "**"}

    def visit_BinOp(self, node: ast.BinOp) -> Type:
        lt = self.visit(node.left)
        rt = self.visit(node.right)
        symbol = self._ARITH_SYMBOL[type(node.op)]
        if isinstance(lt, NumberType) and isinstance(rt, NumberType):
            if isinstance(node.op, (ast.Div, ast.Pow)):
                return NUMBER
            return join(lt, rt)
        if isinstance(node.op, ast.Add):
            if isinstance(lt, StringType) and isinstance(rt, StringType):
                return STRING
            if isinstance(lt, ListType) and isinstance(rt, ListType):
                return ListType(join(lt.item, rt.item))
            if is_any(lt) and is_any(rt):
                return ANY
            known = rt if is_any(lt) else lt
            if is_any(lt) or is_any(rt):
                if isinstance(known, NumberType):
                    return NUMBER
                if isinstance(known, StringType):
                    return STRING
                if isinstance(known, ListType):
                    return ListType(ANY)
        else:
            if (is_any(lt) or isinstance(lt, NumberType)) and (is_any(rt) or isinstance(rt, NumberType)):
                if is_any(lt) and is_any(rt):
                    return ANY
                return NUMBER
        hint = ""
        if isinstance(lt, DateTimeType) or isinstance(rt, DateTimeType):
            hint = "use days_since(ts) / hours_since(ts) for date arithmetic"
        elif isinstance(lt, StringType) or isinstance(rt, StringType):
            hint = "arithmetic on strings is not allowed (only + joins two strings)"
        raise self.fail(EXPR_TYPE, f"cannot apply {symbol} to {lt.describe()} and {rt.describe()}", node, hint)

    def visit_IfExp(self, node: ast.IfExp) -> Type:
        self.visit(node.test)
        return join(self.visit(node.body), self.visit(node.orelse))

    def visit_Compare(self, node: ast.Compare) -> Type:
        if len(node.ops) > 1 and any(isinstance(op, (ast.In, ast.NotIn)) for op in node.ops):
            raise self.fail(
                EXPR_FORBIDDEN, "'in' / 'not in' cannot be chained with other comparisons", node,
                "split it into separate comparisons joined with 'and'",
            )
        operands = [node.left, *node.comparators]
        types = [self.visit(n) for n in operands]
        for i, op in enumerate(node.ops):
            self._check_pair(operands[i], types[i], op, operands[i + 1], types[i + 1])
        return BOOL

    def _enum_literal_check(self, value_node: ast.AST, value_type: Type, literal_node: ast.AST) -> None:
        """Reject a string literal that can never be a value of `value_node` (enum, pattern, lengths)."""
        if not isinstance(value_type, StringType) or not _is_string_literal(literal_node):
            return
        literal = literal_node.value  # type: ignore[attr-defined]
        if not value_type.enum or literal in value_type.enum:
            self._constraint_literal_check(value_node, value_type, literal_node, literal)
            return
        owner = getattr(value_node, "lo_path", None) or self.text(value_node)
        same_but_case = [v for v in value_type.enum if v.casefold() == literal.casefold()]
        close = same_but_case or difflib.get_close_matches(literal, value_type.enum, n=1, cutoff=0.6)
        hint = (f"did you mean {close[0]!r}? " if close else "") + "allowed values: " + ", ".join(
            repr(v) for v in value_type.enum
        )
        raise self.fail(EXPR_TYPE, f"{literal!r} is not an allowed value of {owner}", literal_node, hint)

    def _constraint_literal_check(self, value_node: ast.AST, value_type: StringType, literal_node: ast.AST,
                                  literal: str) -> None:
        violation = _constraint_violation(value_type, literal)
        if violation is None:
            return
        owner = getattr(value_node, "lo_path", None) or self.text(value_node)
        close = next(
            (c for c in dict.fromkeys((literal.strip(), literal.upper(), literal.lower(), literal.strip().upper()))
             if c != literal and _constraint_violation(value_type, c) is None and
             (not value_type.enum or c in value_type.enum)),
            None,
        )
        hint = (f"did you mean {close!r}? " if close else "") + f"the lead schema says {owner} {violation}"
        raise self.fail(
            EXPR_TYPE, f"{literal!r} can never be a value of {owner} (it {violation})", literal_node, hint
        )

    def _incompatible(self, node: ast.AST, op_text: str, lt: Type, rt: Type, hint: str = "") -> ExpressionError:
        return self.fail(EXPR_TYPE, f"cannot compare {lt.describe()} {op_text} {rt.describe()}", node, hint)

    def _check_pair(self, left: ast.AST, lt: Type, op: ast.cmpop, right: ast.AST, rt: Type) -> None:
        op_text = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=",
                   ast.In: "in", ast.NotIn: "not in"}[type(op)]  # fmt: skip
        if isinstance(op, (ast.Eq, ast.NotEq)):
            self._enum_literal_check(left, lt, right)
            self._enum_literal_check(right, rt, left)
            if not is_any(lt) and not is_any(rt) and lt.kind != rt.kind:
                raise self._incompatible(left, op_text, lt, rt, _compare_hint(lt, rt))
        elif isinstance(op, (ast.In, ast.NotIn)):
            if is_any(rt):
                return
            if isinstance(rt, ListType):
                if isinstance(right, (ast.List, ast.Tuple, ast.Set)):
                    for element in right.elts:
                        self._enum_literal_check(left, lt, element)
                elif _is_string_literal(left):
                    self._enum_literal_check(right, rt.item, left)
                item = rt.item
                if not is_any(lt) and not is_any(item) and lt.kind != item.kind:
                    raise self._incompatible(left, op_text, lt, rt, _compare_hint(lt, item))
            elif isinstance(rt, StringType):
                if not is_any(lt) and not isinstance(lt, StringType):
                    raise self._incompatible(left, op_text, lt, rt, "'in' on a string tests for a substring")
            else:
                hint = "use present(x.field)" if isinstance(rt, ObjectType) else "'in' needs a list or a string"
                raise self._incompatible(left, op_text, lt, rt, hint)
        else:
            if is_any(lt) or is_any(rt):
                known = rt if is_any(lt) else lt
                if isinstance(known, (NumberType, StringType, DateTimeType, AnyType)):
                    return
                raise self._incompatible(left, op_text, lt, rt, "only numbers, strings and date-times can be ordered")
            if lt.kind != rt.kind:
                raise self._incompatible(left, op_text, lt, rt, _compare_hint(lt, rt))
            if not isinstance(lt, (NumberType, StringType, DateTimeType)):
                raise self._incompatible(left, op_text, lt, rt, "only numbers, strings and date-times can be ordered")

    # -- literals -------------------------------------------------------------------------------------------

    def _sequence(self, node: ast.List | ast.Tuple | ast.Set) -> Type:
        item: Type | None = None
        for element in node.elts:
            t = self.visit(element)
            item = t if item is None else join(item, t)
        return ListType(item or ANY)

    visit_List = visit_Tuple = visit_Set = _sequence

    # -- helper calls -------------------------------------------------------------------------------------

    def visit_Call(self, node: ast.Call) -> Type:
        func = node.func
        if not isinstance(func, ast.Name):  # the parser already rejects method calls
            raise self.fail(EXPR_FORBIDDEN, "method calls are not allowed", node, sandbox.method_hint(node, self.source))
        helper = HELPERS.get(func.id)
        if helper is None:
            if func.id in self.names:
                raise self.fail(EXPR_BAD_CALL, f"{func.id!r} is not a function", node)
            hint = _suggest(func.id, HELPERS) or "helpers: " + ", ".join(sorted(HELPERS))
            raise self.fail(EXPR_BAD_CALL, f"unknown function {func.id!r}", node, hint)
        args = self._bind(helper, node)
        node.lo_helper = helper  # type: ignore[attr-defined]
        node.lo_args = args  # type: ignore[attr-defined]
        if helper.name in ACTIVITY_HELPERS:
            self.paths["lead.activities"] = None
        types: list[Type] = []
        for position, arg in enumerate(args):
            if arg is None:
                types.append(ANY)
                continue
            t = self.visit(arg)
            types.append(t)
            if position in helper.literal_args:
                value = arg.value if isinstance(arg, ast.Constant) else None
                validate_literal_argument(helper, position, value, self.col(arg))
            expected = helper.arg_types[position] if position < len(helper.arg_types) else ANY
            if not assignable(t, expected):
                raise self.fail(
                    EXPR_TYPE,
                    f"{helper.name}() expects {expected.describe()} for {helper.params[position]}, got {t.describe()}",
                    arg, f"signature: {helper.signature}",
                )
        self._special_checks(helper, node, args, types)
        return helper.returns(types)

    def _bind(self, helper: Helper, node: ast.Call) -> list[ast.AST | None]:
        positional = list(node.args)
        if helper.max_args == -1:
            if node.keywords:
                raise self.fail(EXPR_BAD_CALL, f"{helper.name}() takes no keyword arguments", node)
            if len(positional) < helper.min_args:
                raise self.fail(EXPR_BAD_CALL, f"{helper.name}() needs at least {helper.min_args} argument", node,
                                f"signature: {helper.signature}")
            return positional  # type: ignore[return-value]
        if len(positional) > helper.max_args:
            raise self.fail(
                EXPR_BAD_CALL, f"{helper.name}() takes at most {helper.max_args} argument(s), got {len(positional)}",
                node, f"signature: {helper.signature}",
            )
        bound: list[ast.AST | None] = [*positional] + [None] * (helper.max_args - len(positional))
        for kw in node.keywords:
            if kw.arg not in helper.keywords or kw.arg not in sandbox.ALLOWED_KEYWORDS:
                raise self.fail(
                    EXPR_BAD_CALL, f"{helper.name}() has no keyword argument {kw.arg!r}", kw,
                    f"signature: {helper.signature}",
                )
            position = helper.params.index(kw.arg)  # type: ignore[arg-type]
            if bound[position] is not None:
                raise self.fail(EXPR_BAD_CALL, f"{helper.name}() got {kw.arg!r} twice", kw)
            bound[position] = kw.value
        given = sum(1 for b in bound[: helper.min_args] if b is not None)
        if given < helper.min_args:
            raise self.fail(
                EXPR_BAD_CALL,
                f"{helper.name}() needs {helper.min_args} argument(s), got {len(positional) + len(node.keywords)}",
                node, f"signature: {helper.signature}",
            )
        return bound

    def _special_checks(self, helper: Helper, node: ast.Call, args: list, types: list[Type]) -> None:
        name = helper.name
        if name in ("startswith", "endswith"):
            t = types[1]
            if not (is_any(t) or isinstance(t, StringType) or (isinstance(t, ListType) and assignable(t.item, STRING))):
                raise self.fail(EXPR_TYPE, f"{name}() expects a string or a list of strings, got {t.describe()}", args[1])
        elif name == "contains":
            container, item = types
            if isinstance(container, StringType):
                if not is_any(item) and not isinstance(item, StringType):
                    raise self.fail(EXPR_TYPE, f"contains() on a string needs a string item, got {item.describe()}", args[1])
            elif isinstance(container, ListType):
                self._enum_literal_check(args[0], container.item, args[1])
                if not is_any(item) and not is_any(container.item) and item.kind != container.item.kind:
                    raise self.fail(EXPR_TYPE, f"contains() on a {container.describe()} cannot hold a {item.describe()}", args[1])
            elif not is_any(container):
                raise self.fail(EXPR_TYPE, f"contains() expects a string or a list, got {container.describe()}", args[0])
        elif name == "len":
            if not isinstance(types[0], (AnyType, StringType, ListType, ObjectType)):
                raise self.fail(EXPR_TYPE, f"len() expects a string, list or object, got {types[0].describe()}", args[0])
        elif name in ("min", "max"):
            if len(types) == 1:
                if not isinstance(types[0], (AnyType, ListType)):
                    raise self.fail(EXPR_TYPE, f"{name}() of one value needs a list", args[0], f"e.g. {name}(a, b)")
            else:
                kinds = {t.kind for t in types if not is_any(t)}
                if len(kinds) > 1 or kinds - {"number", "string", "datetime"}:
                    raise self.fail(EXPR_TYPE, f"{name}() needs values of one orderable type", node)
        elif name in ACTIVITY_HELPERS:
            self._check_activity_kind(node, args[0], types[0])

    def _check_activity_kind(self, node: ast.Call, arg: ast.AST, t: Type) -> None:
        lead_type = self.names.get("lead")
        activities = lead_type.props.get("activities") if isinstance(lead_type, ObjectType) else None
        if not isinstance(activities, ListType):
            raise self.fail(EXPR_BAD_CALL, "the lead schema declares no 'activities' list", node)
        item = activities.item
        kind_type = item.props.get("type", ANY) if isinstance(item, ObjectType) else ANY
        if not (is_any(t) or isinstance(t, StringType) or (isinstance(t, ListType) and assignable(t.item, STRING))):
            raise self.fail(EXPR_TYPE, f"activity type must be a string or a list of strings, got {t.describe()}", arg)
        elements = arg.elts if isinstance(arg, (ast.List, ast.Tuple, ast.Set)) else [arg]
        for element in elements:
            self._enum_literal_check(_Labelled("activity type"), kind_type, element)


class _Labelled(ast.AST):
    """A stand-in node that names a value in messages (e.g. 'activity type')."""

    def __init__(self, label: str):
        super().__init__()
        self.lo_path = label


def _constraint_violation(t: StringType, literal: str) -> str | None:
    """Why `literal` breaks the schema's pattern / minLength / maxLength of `t` ("must match ..."), or None.

    The pattern is searched unanchored, as JSON Schema does; one RE2 cannot compile is not checked here.
    """
    if t.min_length is not None and len(literal) < t.min_length:
        return f"must be at least {t.min_length} character{'s' if t.min_length != 1 else ''} long"
    if t.max_length is not None and len(literal) > t.max_length:
        return f"must be at most {t.max_length} character{'s' if t.max_length != 1 else ''} long"
    if t.pattern is not None:
        try:
            pattern = compile_pattern(t.pattern)
        except ValueError:
            return None
        if not pattern.search(literal):
            return f"must match {t.pattern}"
    return None


def _compare_hint(lt: Type, rt: Type) -> str:
    kinds = {lt.kind, rt.kind}
    if kinds == {"string", "number"}:
        return "quote numbers consistently: compare a number with a number, a string with a string"
    if "datetime" in kinds:
        return "compare date-times with date-times, or use days_since(ts) <= N"
    if "boolean" in kinds:
        return "compare with True / False, or use the boolean directly"
    return ""


def check(tree: ast.Expression, source: str, names: Mapping[str, Type], want: Type | None = None) -> CheckResult:
    """Check a parsed expression against the scope's names; annotate nodes; return the result type and paths."""
    checker = Checker(source, names)
    result = checker.visit(tree.body)
    if want is not None and not assignable(result, want):
        hint = ""
        if isinstance(want, BoolType):
            hint = "a condition must be true/false: compare the value (x == ...) or use present(x)"
        raise ExpressionError(
            EXPR_TYPE, f"expected a {want.describe()} expression, got {result.describe()}", 1, hint
        )
    return CheckResult(tree, result, tuple(sorted(checker.paths)))
