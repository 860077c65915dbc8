"""The static cost bound: each checked expression's worst-case cost per lead, from the lead schema's declared sizes.

Like CEL's cost estimator (Kubernetes refuses a rule whose estimate passes its budget), the bound is computed
from the declared limits of the inputs: `maxItems` of a list, `maxLength` of a string. Where the schema declares
none, the limits the lead validator enforces anyway are assumed (a string of at most MAX_STRING_LENGTH characters,
a declared list of at most DEFAULT_LEAD_MAX_ITEMS items, a value of unknown type of at most MAX_LEAD_VALUES), so
the bound holds for every lead the lead schema accepts.

Units: one unit is one step of an expression (a field read, a comparison, a helper call: tens of
nanoseconds); scanning a string costs one unit per STRING_CHARS_PER_UNIT characters; a loop costs its body
once per item. `expression_cost` is the bound for one evaluation; `engine.costbound` multiplies per-activity
filters by the activities' maxItems and sums a policy's rules.
"""

from __future__ import annotations

import ast
import math

from engine.expr import sandbox
from engine.expr.sandbox import (
    DEFAULT_LEAD_MAX_ITEMS, MAX_COLLECTION_LENGTH, MAX_LEAD_TOTAL_CHARS, MAX_LEAD_VALUES, MAX_STRING_LENGTH,
    string_units,
)
from engine.expr.types import AnyType, ListType, ObjectType, StringType, Type

# Helpers whose cost is a scan of their first (string) argument.
_STRING_SCANS = frozenset({"lower", "upper", "strip", "email_domain", "is_free_email", "matches"})
_ACTIVITY_HELPERS = frozenset({"count_activities", "has_activity", "last_activity_at"})


def max_length(t: Type | None) -> int:
    """The most characters a value of type `t` may hold (the schema's maxLength, else the hard limit)."""
    if isinstance(t, StringType):
        if t.enum:
            return max(len(v) for v in t.enum)
        if t.max_length is not None:
            return min(t.max_length, MAX_STRING_LENGTH)
    return MAX_STRING_LENGTH


def max_items(t: Type | None) -> int:
    """The most items a list of type `t` may hold: the schema's maxItems, else the default the lead validator
    enforces on declared lists (DEFAULT_LEAD_MAX_ITEMS), else (a value of unknown type) the hard limit."""
    if isinstance(t, ListType):
        return min(t.max_items if t.max_items is not None else DEFAULT_LEAD_MAX_ITEMS, MAX_LEAD_VALUES)
    return MAX_LEAD_VALUES


def size_units(t: Type | None) -> int:
    """Worst-case cost of comparing or copying a value of type `t` (strings by length, lists by items)."""
    if isinstance(t, StringType):
        return string_units(max_length(t))
    if isinstance(t, ListType):
        return min(MAX_LEAD_VALUES, 1 + max_items(t) * size_units(t.item))
    if isinstance(t, (AnyType, ObjectType)) or t is None:
        return MAX_LEAD_VALUES if not isinstance(t, ObjectType) else min(MAX_LEAD_VALUES, 1 + sum(
            size_units(p) for p in t.props.values()))
    return 1


def _type(node: ast.AST) -> Type | None:
    return getattr(node, "lo_type", None)


def node_units(node: ast.AST) -> int:
    """`size_units` of an operand: a literal by its actual size, anything else by its type's bound."""
    if isinstance(node, ast.Constant):
        return string_units(len(node.value)) if isinstance(node.value, str) else 1
    return size_units(_type(node))


def activity_index_cost(activities: Type | None) -> int:
    """Building one lead's activity index: sorting its activities once (n log n)."""
    n = max_items(activities)
    return 1 + n * max(1, math.ceil(math.log2(n + 1)))


class CostEstimator:
    """Worst-case cost of a checked expression tree (annotated by `engine.expr.check`)."""

    def __init__(self, activities: Type | None = None):
        self.activities = activities  # the lead's `activities` list type (for the activity helpers)
        self.item_scans = 0  # string scans of the filtered activity's own fields (see `loop_cost`)
        self.item_scan_sites = 0

    def scan(self, node: ast.AST) -> int:
        """Cost of scanning the string `node`: counted apart when it is a field of the filtered activity."""
        units = string_units(max_length(_type(node)))
        if _rooted_at(node, "activity"):
            self.item_scans += units
            self.item_scan_sites += 1
            return 0
        return units

    def cost(self, node: ast.AST) -> int:
        method = getattr(self, "cost_" + type(node).__name__, None)
        if method is None:
            return 1 + sum(self.cost(child) for child in ast.iter_child_nodes(node))
        return method(node)

    def cost_Expression(self, node: ast.Expression) -> int:
        return self.cost(node.body)

    def cost_Constant(self, node: ast.Constant) -> int:
        return 1

    cost_Name = cost_Constant

    def cost_Attribute(self, node: ast.Attribute) -> int:
        return 1 + self.cost(node.value)

    cost_Subscript = cost_Attribute

    def cost_BoolOp(self, node: ast.BoolOp) -> int:
        return 1 + sum(self.cost(v) for v in node.values)

    def cost_IfExp(self, node: ast.IfExp) -> int:
        return 1 + self.cost(node.test) + max(self.cost(node.body), self.cost(node.orelse))

    def cost_UnaryOp(self, node: ast.UnaryOp) -> int:
        return 1 + self.cost(node.operand)

    def cost_BinOp(self, node: ast.BinOp) -> int:
        operands = self.cost(node.left) + self.cost(node.right)
        lt, rt = _type(node.left), _type(node.right)
        if isinstance(node.op, ast.Add) and not _numbers(lt, rt):
            # a string or list join: bounded by its result (at most the sandbox's sequence limits)
            chars = min(MAX_STRING_LENGTH, max_length(lt) + max_length(rt))
            items = min(MAX_COLLECTION_LENGTH, max_items(lt) + max_items(rt))
            return operands + max(string_units(chars), 1 + items)
        if isinstance(node.op, ast.Mult) and not _numbers(lt, rt):  # repetition: up to the sequence limits
            return operands + max(string_units(MAX_STRING_LENGTH), 1 + MAX_COLLECTION_LENGTH)
        if isinstance(node.op, ast.Pow):
            return operands + 1 + sandbox.MAX_INT_BITS // 64
        return operands + 1

    def cost_Compare(self, node: ast.Compare) -> int:
        operands = [node.left, *node.comparators]
        total = sum(self.cost(n) for n in operands)
        for i, op in enumerate(node.ops):
            left, right = operands[i], operands[i + 1]
            if isinstance(op, (ast.In, ast.NotIn)):
                total += self._membership(left, right)
            else:
                total += min(node_units(left), node_units(right))
        return total

    def _membership(self, item: ast.AST, container: ast.AST) -> int:
        if isinstance(container, (ast.List, ast.Tuple, ast.Set)):
            return 1 + len(container.elts) * min(node_units(item), _literal_units(container))
        t = _type(container)
        if isinstance(t, StringType):
            return self.scan(container)
        if isinstance(t, ListType):
            return 1 + max_items(t) * min(node_units(item), size_units(t.item))
        return MAX_LEAD_VALUES

    def cost_List(self, node: ast.List) -> int:
        return 1 + sum(self.cost(e) for e in node.elts)

    cost_Tuple = cost_Set = cost_List

    def cost_Call(self, node: ast.Call) -> int:
        quantifier = getattr(node, "lo_quantifier", None)
        if quantifier is not None:
            items, _, predicate = node.args
            return 1 + self.cost(items) + max_items(_type(items)) * (1 + self.cost(predicate))
        helper = getattr(node, "lo_helper", None)
        args = [a for a in getattr(node, "lo_args", node.args) if a is not None]
        total = 1 + sum(self.cost(a) for a in args)
        name = getattr(helper, "name", "")
        first = _type(args[0]) if args else None
        if name in _STRING_SCANS:
            total += self.scan(args[0]) if args else 1
        elif name in ("startswith", "endswith"):
            total += _literal_units(args[1]) if len(args) > 1 else 1
        elif name == "contains" and len(args) == 2:
            total += self._membership(args[1], args[0])
        elif name in ("min", "max"):
            total += max_items(first) if len(args) == 1 else len(args)
        elif name in _ACTIVITY_HELPERS:
            kinds = len(args[0].elts) if isinstance(args[0], (ast.List, ast.Tuple, ast.Set)) else (
                1 if isinstance(args[0], ast.Constant) else sandbox.MAX_ACTIVITY_TYPES_PER_CALL)
            total += kinds * 2 * max(1, math.ceil(math.log2(max_items(self.activities) + 1)))
        return total


def _numbers(lt: Type | None, rt: Type | None) -> bool:
    return getattr(lt, "kind", "") == "number" and getattr(rt, "kind", "") == "number"


def _literal_units(node: ast.AST) -> int:
    """Cost of comparing against a literal (or a list of literals): its longest string, else 1."""
    values = [e.value for e in node.elts if isinstance(e, ast.Constant)] if isinstance(
        node, (ast.List, ast.Tuple, ast.Set)) else [getattr(node, "value", None)]
    if not all(isinstance(v, (str, int, float, bool)) for v in values) or not values:
        return string_units(MAX_STRING_LENGTH) if not isinstance(node, ast.Constant) else 1
    return max(string_units(len(v)) if isinstance(v, str) else 1 for v in values)


def _rooted_at(node: ast.AST, name: str) -> bool:
    """Is `node` a field read under the scope name `name` (activity.url, activity["asset"])?"""
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return isinstance(node, ast.Name) and node.id == name and getattr(node, "lo_var", None) is None


def expression_cost(tree: ast.Expression, activities: Type | None = None) -> int:
    """The worst-case cost of one evaluation of a checked expression."""
    estimator = CostEstimator(activities)
    return estimator.cost(tree) + estimator.item_scans


def loop_cost(tree: ast.Expression, items: int, activities: Type | None = None) -> int:
    """The worst-case cost of evaluating a per-activity filter once for each of `items` activities.

    Scans of the activity's own strings are bounded twice: by each string's declared length, and together
    by the lead's total characters (MAX_LEAD_TOTAL_CHARS), since each activity's strings are distinct data.
    """
    estimator = CostEstimator(activities)
    per_item = estimator.cost(tree)
    own = min(items * estimator.item_scans, estimator.item_scan_sites * string_units(MAX_LEAD_TOTAL_CHARS))
    return items * per_item + own


__all__ = ["CostEstimator", "expression_cost", "loop_cost", "activity_index_cost", "max_items", "max_length", "size_units"]
